"""A run chooses torch's CPU threads and logs the choice (issue 16): ``train.py`` (and so each
fold of ``cross_validate.py``) from the cores and the data-loader workers, the demos one thread.

One tiny epoch each on the generated corpus (``tiny_recipe``), ``OMP_NUM_THREADS`` unset as for a
user who never heard of it.
"""

import pytest
import torch
from tiny_recipe import (
    EXPERIMENT,
    FOLD,
    SEED,
    TINY_TRAINING,
    in_process_run,
    make_tiny_assets,
    output_folder,
    run_argv,
    tiny_argv,
)

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.experiment.run import choose_threads
from m4ser_lobes.testing.demo import run_training
from m4ser_lobes.testing.models import TINY_OVERRIDES

pytestmark = pytest.mark.slow  # each trains one tiny epoch (about 15 s)


def logged_threads(folder):
    lines = [line for line in (folder / "log.txt").read_text(encoding="utf-8").splitlines()
             if "CPU threads:" in line]
    assert len(lines) == 1, lines
    return lines[0].split(" - INFO - ", 1)[1]


def test_a_recipe_run_shares_the_cores_with_its_workers_and_logs_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assets = make_tiny_assets(tmp_path / "assets")
    results = tmp_path / "results"
    with in_process_run():  # restores the thread count afterwards
        brain = run_argv(tiny_argv(assets, results, 1, num_workers=1))
        during = torch.get_num_threads()
    threads, reason = choose_threads({"cpu_threads": None, "num_workers": 1}, "cpu", environ={})
    assert during == threads and reason.startswith("automatic: ")
    assert logged_threads(output_folder(results)) == \
        f"CPU threads: {threads} ({reason}; --cpu_threads=<n> sets them)"
    assert brain.hparams.cpu_threads is None


def test_the_demo_trains_on_one_logged_thread(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assets = make_tiny_assets(tmp_path / "assets")
    overrides = {
        **{k: str(v) for k, v in assets.items()}, "results_folder": str(tmp_path / "results"),
        "experiment_name": EXPERIMENT, "fold": FOLD, "seed": SEED, "expected_utterances": None,
        **TINY_OVERRIDES, "number_of_epochs": 1, "batch_size": 4,
        **{k: v for k, v in TINY_TRAINING.items() if k != "device"},
    }
    with in_process_run():
        torch.set_num_threads(2)  # what a two-core machine starts with
        run_training(IEMOCAP, overrides, ["--noprogressbar"])
        during = torch.get_num_threads()
    assert during == 1
    assert logged_threads(output_folder(tmp_path / "results")) == \
        "CPU threads: 1 (cpu_threads=1; --cpu_threads=<n> sets them)"
