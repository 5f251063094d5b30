"""Helpers for the integration tests that run ``recipes/IEMOCAP/train.py`` end to end.

A tiny generated IEMOCAP look-alike (``m4ser_lobes.testing.mini_iemocap``, 2 kept utterances per dialog:
28 training utterances in fold 1), tiny random HuBERT and BERT saved locally (no download) and
the YAML overrides that shrink ``hparams/m4ser.yaml`` to them. Everything else is the paper
configuration's own code path: data prep, ``M4SERBrain``, checkpointing, test.

Also imported by the worker scripts of this folder (``resume_worker.py``, ``ddp_worker.py``),
which run as ``__main__`` with this folder on ``sys.path``.
"""

import contextlib
import json
import math
import os
from pathlib import Path

import yaml

from m4ser_lobes.testing.models import TINY_OVERRIDES, override_argv

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECIPE = REPO / "recipes" / "IEMOCAP"
TRAIN_SCRIPT = RECIPE / "train.py"
HPARAMS = REPO / "hparams" / "m4ser.yaml"
EXPERIMENT = "tiny"
FOLD = 1
SEED = 11
BATCH_SIZE = 4


#: The run settings of every tiny training run, after the sizes (``TINY_OVERRIDES``).
TINY_TRAINING = {
    "lr": 0.001,
    "num_workers": 0,
    "max_audio_seconds": 1.0,
    "ckpt_interval_minutes": 0,
    "device": "cpu",
}


def run_argv(argv):
    """What ``recipes/IEMOCAP/train.py`` does with ``argv`` (returns the Brain)."""
    from m4ser_lobes.experiment.run import run_argv as run

    return run(argv)


def make_tiny_assets(folder, utterances_per_dialog=2):
    """Generate the corpus and save the tiny encoders under ``folder`` (idempotent); returns a dict."""
    from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap
    from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

    folder = Path(folder)
    corpus = folder / "corpus"
    speech = folder / "tiny-hubert"
    text = folder / "tiny-bert"
    if not (corpus / "hypotheses.json").exists():
        generate_iemocap(corpus, seed=0, utterances_per_dialog=utterances_per_dialog)
    if not (speech / "config.json").exists():
        save_tiny_speech_encoder(speech, kind="hubert", hidden_size=32, num_layers=1)
    if not (text / "config.json").exists():
        save_tiny_text_encoder(text, words=corpus_words(), hidden_size=32, num_layers=1)
    return {
        "data_folder": corpus / "IEMOCAP_full_release",
        "hypotheses_file": corpus / "hypotheses.json",
        "speech_encoder_source": speech,
        "text_encoder_source": text,
    }


def experiment_argv(assets, results, defaults, keys):
    """Command line of an experiment (``recipes/experiments/table4.py``, ``sensitivity.py``) over
    the tiny configuration, 1 epoch: ``defaults`` (the test's grid), then ``keys``, replace it."""
    values = {"out": f"{results}/table4", **assets, "results_folder": results, **TINY_OVERRIDES,
              "number_of_epochs": 1, **{k: v for k, v in TINY_TRAINING.items() if k != "device"},
              **defaults, **keys}
    return [str(HPARAMS), "--device=cpu", "--noprogressbar",
            *(f"--{k}={'null' if v is None else v}" for k, v in values.items())]


def tiny_argv(assets, results_folder, epochs, **extra):
    """Command line of ``train.py`` (without the script name) for the tiny configuration."""
    overrides = {
        **assets,
        "results_folder": results_folder,
        "experiment_name": EXPERIMENT,
        "fold": FOLD,
        "seed": SEED,
        "expected_utterances": None,
        **TINY_OVERRIDES,
        "number_of_epochs": epochs,
        "batch_size": BATCH_SIZE,
        **TINY_TRAINING,
        **extra,
    }
    return override_argv(HPARAMS, overrides, "--noprogressbar")


def output_folder(results_folder):
    """``output_folder`` of the YAML for :func:`tiny_argv`."""
    return Path(results_folder) / EXPERIMENT / f"fold{FOLD}" / f"seed{SEED}"


def prepared_folder(results_folder):
    """The one manifest folder under ``<results_folder>/prepared/`` (``prepare_folder`` of the
    YAML: a subfolder keyed by the options that shape the manifests)."""
    found = sorted(p.parent for p in (Path(results_folder) / "prepared").glob("*/identity.json"))
    if len(found) != 1:
        raise AssertionError(f"expected one prepared folder in {results_folder}/prepared, got {found}")
    return found[0]


def train_utterances(results_folder):
    """Number of utterances in the prepared training manifest."""
    path = prepared_folder(results_folder) / f"fold{FOLD}" / "train.json"
    with open(path, encoding="utf-8") as fin:
        return len(json.load(fin))


def steps_per_epoch(num_utterances, world_size=1):
    """Optimizer steps per epoch and rank (``DistributedSampler`` pads, no ``drop_last``)."""
    return math.ceil(math.ceil(num_utterances / world_size) / BATCH_SIZE)


def checkpoints(save_folder):
    """Every checkpoint under ``save_folder``, oldest first: dicts with path, meta, brain, counter."""
    found = []
    for path in sorted(Path(save_folder).glob("CKPT+*")):
        if not (path / "CKPT.yaml").exists():
            continue
        with open(path / "CKPT.yaml", encoding="utf-8") as fin:
            meta = yaml.safe_load(fin)
        with open(path / "brain.ckpt", encoding="utf-8") as fin:
            brain = yaml.safe_load(fin)
        counter = int((path / "counter.ckpt").read_text().strip())
        found.append({"path": path, "meta": meta, "brain": brain, "counter": counter})
    return sorted(found, key=lambda c: c["meta"]["unixtime"])


@contextlib.contextmanager
def in_process_run():
    """Context for a training run inside pytest: one torch thread (cheaper for the tiny model,
    and a subprocess may run beside it), and the root-logger handlers that
    ``sb.create_experiment_directory`` installs removed afterwards."""
    import torch

    from m4ser_lobes.experiment.run import restore_root_logging

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with restore_root_logging():
            yield
    finally:
        torch.set_num_threads(threads)


def subprocess_env(**extra):
    """Environment for the worker subprocesses: offline, repo importable, one thread each."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update({key: str(value) for key, value in extra.items()})
    return env
