#!/usr/bin/env python3
r"""Table IX: few-shot domain adaptation of the cross-corpus models.

    python recipes/studies/few_shot.py hparams/m4ser.yaml \
        --iemocap_folder=/data/IEMOCAP_full_release --iemocap_hypotheses=iemocap_hyps.json \
        --meld_folder=/data/MELD.Raw --meld_hypotheses=meld_hyps.json \
        [--shots=5,10,20,60] [--draws=5] [--finetune_epochs=10] [--finetune_lr=1e-5] \
        [--rows=m4ser] [--directions=ie2me,me2ie] [--study_folder=results/studies] \
        [train.py overrides]

Protocol (paper, section V-G): ``k`` labelled target utterances per class are drawn from the
target validation part (30 % of the target corpus, see ``cross_corpus.py``), the source model is
fine-tuned on them, the rest of the validation part selects the checkpoint (best W-F1 on MELD,
best UA on IEMOCAP) and the fixed 70 % test part is scored. ``--draws`` seeded draws per shot size
(nested: with the same draw, the 5 shots are among the 10 ...); the table gives mean ± standard
deviation over the draws.

The source model is the cross-corpus run of the same row and direction in the same
``--study_folder`` (trained first when it is not there, with the same overrides). Fine-tuning
runs in its own folder ``<study_folder>/runs/<direction>/<row>/k<k>/draw<d>``, whose save folder
starts with a copy of the source run's best checkpoint (epoch counter 0, fresh optimiser state
with this run's learning rates, no validation metric: ``studies.seed_finetune_checkpoint``);
train.py then resumes from it for ``--finetune_epochs`` epochs (``number_of_epochs`` of the
fine-tuning runs) with ``--finetune_lr`` (``lr`` of the fine-tuning runs; default: the source
runs' learning rates); the other train.py overrides apply to both. ``init.json`` records the source
checkpoint; a changed source is refused. Rerunning skips finished runs.

Writes ``<study_folder>/few_shot.md`` and ``.json``: our numbers beside the paper's.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_runner  # noqa: E402

from m4ser_lobes.experiment import studies  # noqa: E402

#: The paper gives neither the fine-tuning epochs nor its learning rate: 10 epochs (of a few
#: dozen to a few hundred utterances) and the source run's learning rates by default.
OPTIONS = {"rows": "m4ser", "shots": ",".join(map(str, studies.PAPER_SHOTS)), "draws": 5,
           "finetune_epochs": 10, "finetune_lr": None}


def notes(options):
    """The protocol lines printed under the table."""
    return [
        f"{options.draws} seeded draws per shot size from the target validation part "
        f"({options.target_valid_ratio:.0%} of the target corpus, seed {options.split_seed}); "
        "the rest of it selects the checkpoint (MELD: best W-F1, IEMOCAP: best UA); "
        "test: the fixed "
        f"{1 - options.target_valid_ratio:.0%}.",
        f"Fine-tuned for {options.finetune_epochs} epochs (lr: "
        f"{options.finetune_lr or 'as the source run'}) from the best checkpoint of the "
        f"cross-corpus run (model selection of that run: {options.select_on} validation).",
        "ACC = WA (overall accuracy); W-F1 = support-weighted F1; UA = mean per-class recall.",
        f"train.py overrides: {options.passthrough or 'none'}.",
    ]


def _positive_int(options, key):
    value = options[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise studies.StudyError(f"--{key}={value!r}: a positive integer is needed")
    return value


def main(argv):
    """Train (or skip) the source runs and every fine-tuning run; write the table."""
    options = study_runner.parse_args(argv, OPTIONS, "recipes/studies/few_shot.py")
    try:
        shots = sorted({int(k) for k in options.shots})
    except ValueError as error:
        raise studies.StudyError(f"--shots={options.shots}: comma-separated integers") from error
    draws = _positive_int(options, "draws")
    epochs = _positive_int(options, "finetune_epochs")
    extra = {"number_of_epochs": epochs}
    if options.finetune_lr is not None:
        extra["lr"] = options.finetune_lr
    pools = study_runner.prepare_pools(options)
    study_runner.check_study_record(options, pools)
    sources, finetunes = [], []
    for direction in options.directions:
        paths = study_runner.write_direction_data(options, pools, direction)
        for draw in range(draws):
            for k in shots:
                shot_paths = study_runner.write_shot_data(options, direction, paths, k, draw)
                for row in options.rows:
                    finetunes.append((row, direction, k, draw, paths, shot_paths))
        for row in options.rows:
            output = study_runner.run_folder(options, direction, row)
            sources.append((row, direction, study_runner.run_argv(options, direction, row,
                                                                   paths, output)))
    study_runner.precheck(
        [argv for *_, argv in sources]
        + [study_runner.finetune_argv(options, d, r, p, sp, k, draw, extra)
           for r, d, k, draw, p, sp in finetunes])
    for row, direction, argv in sources:
        study_runner.train_run(argv, f"{direction} {row} (source)")
    results = {}
    for row, direction, k, draw, paths, shot_paths in finetunes:
        metrics = study_runner.finetune_run(options, direction, row, paths, shot_paths, k, draw,
                                            extra)
        results.setdefault((row, direction, k), []).append(metrics)
    table = studies.few_shot_table(results, rows=options.rows, shots=shots)
    return study_runner.publish(table, options, "few_shot", notes(options))


if __name__ == "__main__":
    study_runner.command_line(main)
