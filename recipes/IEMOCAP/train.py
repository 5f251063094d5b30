#!/usr/bin/env python3
r"""Train and test M4SER on one IEMOCAP fold (leave-one-session-out).

    python recipes/IEMOCAP/train.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=hyps.json --fold=1

Rerunning the same command resumes from the last (intra-epoch) checkpoint. Every Table IV
ablation is a command-line override (README.md); ``recipes/IEMOCAP/cross_validate.py`` runs the
five folds. Multi-GPU: ``torchrun --standalone --nproc_per_node=N recipes/IEMOCAP/train.py ...``.

What a run does (``m4ser_lobes.experiment.recipe.run_recipe``, shared with the MELD recipe):

1. every value of the YAML (with the overrides) is checked before anything is built or
   prepared (``--use_gan=no`` or ``--modalities=speech`` with GAN on are refused in one line),
   and the run's settings are compared with those recorded in ``output_folder``: a rerun with
   other settings and the same ``experiment_name`` is refused (it would re-test the old
   checkpoint), unless ``--overwrite=True`` moves the old run aside. Same settings resume;
2. ``iemocap_prepare.prepare_iemocap`` writes the fold's manifests (``--skip_prep=True`` with
   ``--train_annotation=... --valid_annotation=... --test_annotation=...`` uses your own);
3. M4SER trains on train, the checkpoint with the best validation UA (``selection_metric``) is
   tested.

Outputs in ``output_folder``: ``train_log.txt``, ``log.txt``, ``hyperparams.yaml``,
``configuration.json`` (which parts of M4SER run), ``fingerprint.json`` (the settings that
change results), ``history.json`` (per-epoch loss terms and validation metrics),
``predictions.csv``, ``test_metrics.json``, ``confusion_matrix.png``, ``save/`` (checkpoints,
``label_encoder.txt``). Manifests and ``label_statistics.json`` are in ``prepare_folder``.
"""

import os
import sys

from m4ser_lobes.experiment.recipe import Corpus, command_line, prepare_folders, run_recipe

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from m4ser_lobes.corpora.iemocap import HPARAM_RULES, prepare_iemocap  # noqa: E402


def prepare_kwargs(hparams):
    """The ``prepare_iemocap`` arguments of a run."""
    return {
        **prepare_folders(hparams),
        "validation": hparams["validation"],
        "valid_ratio": hparams["valid_ratio"],
        "seed": hparams["seed"],
        "expected_utterances": hparams["expected_utterances"],
    }


IEMOCAP = Corpus(
    name="IEMOCAP",
    prepare=prepare_iemocap,
    prepare_kwargs=prepare_kwargs,
    rules=HPARAM_RULES,  # metrics: WA, UA, W-F1 (the default)
)
#: Every rule for ``hparams/m4ser.yaml``: the model's and IEMOCAP's.
RULES = IEMOCAP.all_rules


def main(argv):
    """Run the recipe on ``argv`` (``[hparams_file, --key=value ...]``); returns the Brain."""
    return run_recipe(argv, IEMOCAP)


if __name__ == "__main__":
    command_line(main)
