#!/usr/bin/env python3
r"""Table VIII: cross-corpus emotion recognition, IEMOCAP -> MELD and MELD -> IEMOCAP.

    python recipes/studies/cross_corpus.py hparams/m4ser.yaml \
        --iemocap_folder=/data/IEMOCAP_full_release --iemocap_hypotheses=iemocap_hyps.json \
        --meld_folder=/data/MELD.Raw --meld_hypotheses=meld_hyps.json \
        [--rows=baseline,msr_mir,gan_lcl,m4ser] [--directions=ie2me,me2ie] \
        [--study_folder=results/studies] [--select_on=target|source] [--split_seed=1986] \
        [train.py overrides: --number_of_epochs=30 --batch_size=8 ...]

Protocol (paper, section V-G): train on all of the source corpus in the four shared classes
(``m4ser_lobes.experiment.studies.LABEL_MAPS``: MELD's surprise, fear and disgust dropped), split
the target corpus 30 % validation / 70 % test (stratified, ``--split_seed``), report ACC and
weighted F1 on a MELD target, WA and UA on an IEMOCAP target. Model selection
(``--select_on``): ``target`` (default, the paper's "30 % of the target corpus is reserved for
validation") or ``source`` (a stratified ``--source_valid_ratio`` hold-out of the source; the
target stays unseen until the test). The tested checkpoint has the best validation W-F1 when the
validation part is MELD, the best UA when it is IEMOCAP (train.py's ``--selection_metric``).

Rows (switches of ``hparams/m4ser.yaml``): ``baseline`` (concat of HuBERT and BERT, every part
off), ``msr_mir``, ``gan_lcl``, ``m4ser`` (everything on). Each run is ``recipes/IEMOCAP/train.py``
with manifest overrides; its output folder is ``<study_folder>/runs/<direction>/<row>/source``.
Rerunning the command skips finished runs and resumes the others; a run whose settings changed is
refused (train.py's fingerprint), as is a changed split (``<study_folder>/study.json``).

Writes ``<study_folder>/cross_corpus.md`` and ``.json``: our numbers beside the paper's.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_runner  # noqa: E402

from m4ser_lobes.experiment import studies  # noqa: E402

OPTIONS = {"rows": ",".join(studies.ROWS)}


def notes(options):
    """The protocol lines printed under the table."""
    return [
        f"Source: all of the source corpus in the shared classes {studies.SHARED_CLASSES}; "
        f"target split {options.target_valid_ratio:.0%} validation / "
        f"{1 - options.target_valid_ratio:.0%} test (stratified, seed {options.split_seed}).",
        f"Model selection on the {options.select_on} validation part: the checkpoint with the "
        "best W-F1 when it is MELD, the best UA when it is IEMOCAP (--selection_metric).",
        "ACC = WA (overall accuracy); W-F1 = support-weighted F1; UA = mean per-class recall.",
        f"train.py overrides: {options.passthrough or 'none'}.",
    ]


def main(argv):
    """Run (or skip) every requested run and write the table; returns the table dict."""
    options = study_runner.parse_args(argv, OPTIONS, "recipes/studies/cross_corpus.py")
    pools = study_runner.prepare_pools(options)
    study_runner.check_study_record(options, pools)
    plan = []
    for direction in options.directions:
        paths = study_runner.write_direction_data(options, pools, direction)
        for row in options.rows:
            output = study_runner.run_folder(options, direction, row)
            plan.append((row, direction, study_runner.run_argv(options, direction, row, paths,
                                                                output)))
    study_runner.precheck(argv for _, _, argv in plan)
    results = {(row, direction): study_runner.train_run(argv, f"{direction} {row}")
               for row, direction, argv in plan}
    table = studies.cross_corpus_table(results, rows=options.rows)
    table["runs"] = {f"{d}/{r}": str(study_runner.run_folder(options, d, r))
                     for r, d, _ in plan}
    return study_runner.publish(table, options, "cross_corpus", notes(options))


if __name__ == "__main__":
    study_runner.command_line(main)
