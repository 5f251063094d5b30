#!/usr/bin/env python3
r"""Train M4SER on MELD's train split, select on dev, test on test (ACC and weighted F1).

    python recipes/MELD/train.py hparams/m4ser.yaml \
        --data_folder=/data/MELD.Raw --hypotheses_file=results/meld_whisper-large-v2.json

The model YAML is IEMOCAP's (``hparams/m4ser.yaml``); this recipe applies the MELD column of
Table I on top of it, from ``hparams/meld_overrides.yaml`` (data section, 7 classes, lr 1e-4,
batch 16, 100 epochs, selection on dev weighted F1), and the command line on top of both. Every
Table IV switch is the same override as for IEMOCAP (``--use_gan=False`` ...), and so are
``--class_weights=balanced`` (inverse-frequency weights of L_ER, for MELD's imbalance) and
``--selection_metric=WA`` (select on dev accuracy). Rerunning the same command resumes; a rerun
with other settings is refused unless ``--experiment_name=<new>`` or ``--overwrite=True``.

What a run does (``m4ser_lobes.experiment.recipe.run_recipe``, shared with the IEMOCAP recipe):
check every value, prepare the manifests (``meld_prepare.prepare_meld``: the clips are decoded
once into ``audio_cache``), train on train, keep the checkpoint of the best dev W-F1, test it.

The ASR hypotheses (Whisper large-v2, Table I) are computed once on the manifests, then passed
with ``--hypotheses_file`` (README.md, "MELD")::

    python recipes/MELD/meld_prepare.py /data/MELD.Raw results/meld_manifests \
        --audio-cache results/prepared/meld_audio16k
    m4ser-asr --manifest results/meld_manifests/{train,valid,test}.json \
        --cache results/meld_whisper-large-v2.json --model openai/whisper-large-v2

Outputs in ``output_folder`` (``<results_folder>/<experiment_name>/seed<seed>``): as for
IEMOCAP; ``test_metrics.json`` holds ``ACC`` (= ``WA``), ``W-F1`` (support-weighted F1,
scikit-learn), ``UA``, per-class ``f1``, ``recall`` and ``support`` (also as ``per_class``), the
confusion matrix; ``predictions.csv`` and ``confusion_matrix.png`` beside it; ``history.json``
logs ``LCL_no_positive`` (share of training anchors without a same-class partner in the batch).
"""

import sys
from pathlib import Path

from m4ser_lobes.experiment.config import Rule, one_of, text
from m4ser_lobes.experiment.recipe import Corpus, command_line, prepare_folders, run_recipe

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from m4ser_lobes.corpora.meld import EMOTIONS, FULL_RELEASE, SPLITS, prepare_meld  # noqa: E402

#: ``hparams/meld_overrides.yaml``: the MELD column of Table I, applied under the command line.
OVERRIDES_FILE = HERE.parents[1] / "hparams" / "meld_overrides.yaml"


def _iemocap_only(key):
    return Rule(f"null (IEMOCAP only; MELD uses its official split, remove --{key})",
                lambda v: v is None, results=False)


#: The MELD rules of the YAML (the corpus-agnostic ones are ``config.SCHEMA``).
HPARAM_RULES = {
    "fold": _iemocap_only("fold"),
    "validation": _iemocap_only("validation"),
    "valid_ratio": _iemocap_only("valid_ratio"),
    "expected_utterances": _iemocap_only("expected_utterances"),
    "expected_counts": one_of("full_release").or_null().bookkeeping(),
    "audio_cache": text().or_null().bookkeeping(),
    "trim_miscut": Rule(
        f"a list of MELD splits ({', '.join(SPLITS)}), e.g. [train, dev]",
        lambda v: isinstance(v, list) and all(isinstance(s, str) and s in SPLITS for s in v),
    ),
    "num_emotions": one_of(len(EMOTIONS)),
}


def prepare_kwargs(hparams):
    """The ``prepare_meld`` arguments of a run."""
    return {
        **prepare_folders(hparams),
        "expected_counts": FULL_RELEASE if hparams["expected_counts"] == "full_release" else None,
        "audio_cache": hparams["audio_cache"],
        "num_workers": max(hparams["num_workers"], 1),
        "trim_miscut": tuple(hparams["trim_miscut"]),
    }


MELD = Corpus(
    name="MELD",
    prepare=prepare_meld,
    prepare_kwargs=prepare_kwargs,
    rules=HPARAM_RULES,
    metrics=("ACC", "W-F1", "UA"),
    overrides_file=OVERRIDES_FILE,
)
#: Every rule for ``hparams/m4ser.yaml`` with the MELD overrides.
RULES = MELD.all_rules


def main(argv):
    """Run the recipe on ``argv`` (``[hparams_file, --key=value ...]``); returns the Brain."""
    return run_recipe(argv, MELD)


if __name__ == "__main__":
    command_line(main)
