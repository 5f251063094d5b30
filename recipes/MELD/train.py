#!/usr/bin/env python3
r"""Train M4SER on MELD's train split, select on dev, test on test (ACC and weighted F1).

    python recipes/MELD/train.py hparams/m4ser.yaml \
        --data_folder=/data/MELD.Raw --hypotheses_file=results/meld_whisper-large-v2.json

The model YAML is applied with MELD's data section and its column of Table I
(``hparams/meld.yaml``: 7 classes, lr 1e-4, selection on dev weighted F1) and the
``--key=value`` overrides on top. Every Table IV switch is the same override as for IEMOCAP
(``--use_gan=False`` ...), and so are ``--class_weights=balanced`` and ``--selection_metric=WA``.
Reruns resume, refuse changed settings and continue with a larger ``--number_of_epochs``.

The ASR hypotheses (Whisper large-v2, Table I) are computed once on the manifests (README.md)::

    python recipes/MELD/meld_prepare.py /data/MELD.Raw results/meld_manifests \
        --audio-cache results/prepared/meld_audio16k
    m4ser-asr --manifest results/meld_manifests/{train,valid,test}.json \
        --cache results/meld_whisper-large-v2.json --model openai/whisper-large-v2

What a run does and writes: :mod:`m4ser_lobes.experiment.run` (``plan_run`` and ``train``).
"""

from m4ser_lobes.corpora.meld import MELD
from m4ser_lobes.experiment.run import command_line

if __name__ == "__main__":
    command_line(MELD)
