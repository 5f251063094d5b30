"""torch's CPU threads of a run (issue 16): chosen from the cores and the data-loader workers
unless ``cpu_threads`` or ``OMP_NUM_THREADS`` says otherwise, set by ``train`` and logged."""

from pathlib import Path

import pytest
import torch

from m4ser_lobes.experiment.run import choose_threads, use_threads
from m4ser_lobes.experiment.settings import (
    ConfigError,
    ModelSettings,
    check_values,
    fingerprint_keys,
    load_values,
)

AUTO = {"cpu_threads": None}


@pytest.mark.parametrize("cores, workers, threads", [
    (2, 2, 1),    # the case: 2 workers on 2 cores (3 s an epoch, not 42 s)
    (2, 0, 2),
    (16, 2, 5),
    (16, 0, 16),
    (1, 4, 1),    # never 0
])
def test_automatic_threads_share_the_cores_with_the_workers(cores, workers, threads):
    chosen, reason = choose_threads({**AUTO, "num_workers": workers}, "cpu", environ={},
                                    cores=cores)
    assert chosen == threads
    assert reason == f"automatic: {cores} cores // (1 + {workers} data-loader workers)"


def test_the_key_then_omp_num_threads_say_otherwise():
    values = {"cpu_threads": 3, "num_workers": 2}
    assert choose_threads(values, "cpu", environ={"OMP_NUM_THREADS": "8"}, cores=2) == \
        (3, "cpu_threads=3")
    assert choose_threads({**AUTO, "num_workers": 2}, "cpu", environ={"OMP_NUM_THREADS": "8"},
                          cores=2) == (8, "OMP_NUM_THREADS=8")
    # OpenMP's nested list: its first level; a value OpenMP would not take: automatic
    assert choose_threads(AUTO, "cpu", environ={"OMP_NUM_THREADS": "4,2"}, cores=2)[0] == 4
    for bad in ("", "0", "many"):
        assert choose_threads(AUTO, "cpu", environ={"OMP_NUM_THREADS": bad}, cores=2)[0] == 2


def test_a_gpu_run_keeps_torch_default_unless_told():
    assert choose_threads(AUTO, "cuda:0", environ={}, cores=16) == \
        (None, "torch's default on cuda:0")
    assert choose_threads({"cpu_threads": 2}, "cuda:0", environ={}, cores=16)[0] == 2


def test_use_threads_sets_torch_and_says_why(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        line = use_threads({"cpu_threads": 2, "num_workers": 0}, "cpu")
        assert torch.get_num_threads() == 2
        assert line == "CPU threads: 2 (cpu_threads=2; --cpu_threads=<n> sets them)"
        expected, reason = choose_threads({**AUTO, "num_workers": 1}, "cpu")
        assert use_threads({**AUTO, "num_workers": 1}, "cpu") == \
            f"CPU threads: {expected} ({reason}; --cpu_threads=<n> sets them)"
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


def test_cpu_threads_is_checked_and_is_bookkeeping():
    assert "cpu_threads" in ModelSettings.model_fields
    assert "cpu_threads" not in fingerprint_keys(ModelSettings)  # another count still resumes
    values = _valid_values()
    for good in (None, 1, 8):
        check_values({**values, "cpu_threads": good})
    for bad in (0, "auto", 1.5, True):
        with pytest.raises(ConfigError, match="cpu_threads"):
            check_values({**values, "cpu_threads": bad})


def _valid_values():
    """A complete set of hparams/m4ser.yaml values (the IEMOCAP data keys aside)."""
    return load_values(Path(__file__).resolve().parents[3] / "hparams" / "m4ser.yaml",
                       "data_folder: /d\nnum_emotions: 4\ntrain_annotation: t\n"
                       "valid_annotation: v\ntest_annotation: x\n")
