#!/usr/bin/env python3
r"""Train and test M4SER on one IEMOCAP fold (leave-one-session-out).

    python recipes/IEMOCAP/train.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=hyps.json --fold=1

The model YAML is applied with IEMOCAP's data section (``hparams/iemocap.yaml``) and the
``--key=value`` overrides on top. Every value is checked before any work; the same command
resumes after any interruption; a rerun with other settings is refused unless
``--experiment_name=<new>`` or ``--overwrite=True``; a larger ``--number_of_epochs`` continues a
finished run. Every Table IV ablation is an override (README.md); ``cross_validate.py`` runs the
five folds. Several GPUs: ``torchrun --standalone --nproc_per_node=N recipes/IEMOCAP/train.py ...``.

What a run does and writes: :mod:`m4ser_lobes.experiment.run` (``plan_run`` and ``train``).
"""

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.experiment.run import command_line

if __name__ == "__main__":
    command_line(IEMOCAP)
