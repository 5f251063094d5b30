#!/usr/bin/env python3
r"""Table VIII: cross-corpus emotion recognition, IEMOCAP -> MELD and MELD -> IEMOCAP.

    python recipes/studies/cross_corpus.py hparams/m4ser.yaml \
        --iemocap_folder=/data/IEMOCAP_full_release --iemocap_hypotheses=iemocap_hyps.json \
        --meld_folder=/data/MELD.Raw --meld_hypotheses=meld_hyps.json \
        [--rows=baseline,msr_mir,gan_lcl,m4ser] [--directions=ie2me,me2ie] \
        [--study_folder=results/studies] [--select_on=target|source] [--split_seed=1986] \
        [--target_valid_ratio=0.3] [--source_valid_ratio=0.1] [--subset=True] [--meld_workers=2] \
        [any key of hparams/m4ser.yaml for every run: --number_of_epochs=30 --batch_size=8 ...]

Protocol (paper, section V-G): train on all of the source corpus in the four shared classes
(``m4ser_lobes.experiment.studies.LABEL_MAPS``: MELD's surprise, fear and disgust dropped), split
the target corpus 30 % validation / 70 % test (stratified, ``--split_seed``), report ACC and
weighted F1 on a MELD target, WA and UA on an IEMOCAP target. Model selection
(``--select_on``): ``target`` (default, the paper's "30 % of the target corpus is reserved for
validation") or ``source`` (a stratified ``--source_valid_ratio`` hold-out of the source; the
target stays unseen until the test). The tested checkpoint has the best validation W-F1 when the
validation part is MELD, the best UA when it is IEMOCAP (the run's ``selection_metric``).

Training settings: each direction trains with its source corpus's column of Table I (IE→ME:
IEMOCAP's, lr 1e-5, the model YAML's own values; ME→IE: MELD's, lr 1e-4, ``hparams/meld.yaml``);
a ``--key=value`` given here overrides them for every run. The table's notes say which values
each direction trained with.

Rows (switches of ``hparams/m4ser.yaml``): ``baseline`` (concat of the speech and text encoders,
HuBERT and BERT in the paper, every part off; the table names the encoders the runs used),
``msr_mir``, ``gan_lcl``, ``m4ser`` (everything on). Each run is planned with
``m4ser_lobes.experiment.run.plan_run`` (IEMOCAP's section named after the direction, e.g.
``IEMOCAP→MELD``, the study's manifests) and trained with ``train``; its output folder is
``<study_folder>/runs/<direction>/<row>/source``. Rerunning the command skips finished runs and
resumes the others; a run whose settings or data (split options, corpora) changed is refused
before anything trains (``study_runner.py``).

Writes ``<study_folder>/cross_corpus.md`` and ``.json``: our numbers beside the paper's.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_runner  # noqa: E402

from m4ser_lobes.experiment import studies  # noqa: E402

COMMAND = "recipes/studies/cross_corpus.py"


def notes(study, training, encoders):
    """The protocol lines printed under the table (``training``: direction ->
    ``study_runner.training_settings``; ``encoders``: row -> the encoders of its runs)."""
    options = study.options
    return [
        *(study_runner.training_note(d, t) for d, t in training.items()),
        study_runner.encoders_note(encoders),
        f"Source: all of the source corpus in the shared classes {studies.SHARED_CLASSES}; "
        f"target split {options.target_valid_ratio:.0%} validation / "
        f"{1 - options.target_valid_ratio:.0%} test (stratified, seed {options.split_seed}).",
        f"Model selection on the {options.select_on} validation part: the checkpoint with the "
        "best W-F1 when it is MELD, the best UA when it is IEMOCAP (selection_metric).",
        "ACC = WA (overall accuracy); W-F1 = support-weighted F1; UA = mean per-class recall.",
        f"Run overrides: {study.overrides or 'none'}.",
    ]


def main(argv):
    """Run (or skip) every requested run and write the table; returns the table dict."""
    study = study_runner.parse_command_line(argv, study_runner.StudyOptions, COMMAND, __doc__)
    rows = study.options.rows
    pools = study_runner.prepare_pools(study, rows)
    plans, data = {}, {}
    for direction in study.options.directions:
        paths = study_runner.write_direction_data(study.options, pools, direction)
        data[direction] = str(paths["folder"])
        for row in rows:
            plans[(row, direction)] = study_runner.source_plan(study, direction, row, paths)
    study_runner.precheck(plans.values())
    results = {(row, direction): study_runner.train_run(run, f"{direction} {row}")
               for (row, direction), run in plans.items()}
    encoders = study_runner.encoders_of((row, run) for (row, _), run in plans.items())
    table = studies.cross_corpus_table(results, rows=rows, encoders=encoders)
    table["runs"] = {f"{d}/{r}": str(run.output_folder) for (r, d), run in plans.items()}
    table["data"] = data
    table["training"] = {d: study_runner.training_settings(study, d, plans[(rows[0], d)])
                         for d in study.options.directions}
    return study_runner.publish(table, study, "cross_corpus",
                                notes(study, table["training"], encoders))


if __name__ == "__main__":
    study_runner.command_line(main)
