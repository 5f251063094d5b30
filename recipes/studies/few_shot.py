#!/usr/bin/env python3
r"""Table IX: few-shot domain adaptation of the cross-corpus models.

    python recipes/studies/few_shot.py hparams/m4ser.yaml \
        --iemocap_folder=/data/IEMOCAP_full_release --iemocap_hypotheses=iemocap_hyps.json \
        --meld_folder=/data/MELD.Raw --meld_hypotheses=meld_hyps.json \
        [--shots=5,10,20,60] [--draws=5] [--finetune_epochs=10] [--finetune_lr=1e-5] \
        [--rows=m4ser] [--directions=ie2me,me2ie] [--study_folder=results/studies] \
        [the other options of cross_corpus.py] [any key of hparams/m4ser.yaml for every run]

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
with this run's learning rates: ``m4ser_lobes.experiment.finetune``). Before training, that start
is scored on the run's validation part (logged as epoch 0) and kept as a selection candidate:
when no fine-tuned epoch beats it there, the source model itself is tested. The run trains for
``--finetune_epochs`` epochs (its ``number_of_epochs``) with its source's settings: the source
corpus's column of Table I (IE→ME: IEMOCAP's lr 1e-5; ME→IE: MELD's lr 1e-4 and batch size),
``--finetune_lr`` replacing the learning rate when given; the other overrides apply to both.
The run's ``init_from`` is the digest of that source checkpoint, part of its identity: a
retrained source makes the fine-tuning runs refused, not silently reused. Rerunning skips
finished runs.

Writes ``<study_folder>/few_shot.md`` and ``.json``: our numbers beside the paper's.
"""

import sys
from pathlib import Path
from typing import Annotated, List, Literal, Optional

from pydantic import Field, StrictInt, field_validator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_runner  # noqa: E402

from m4ser_lobes.experiment import finetune as finetuning  # noqa: E402
from m4ser_lobes.experiment import studies  # noqa: E402

COMMAND = "recipes/studies/few_shot.py"
Positive = Annotated[StrictInt, Field(ge=1)]


class Options(study_runner.StudyOptions):
    """The few-shot study's options. The paper gives neither the fine-tuning epochs nor its
    learning rate: 10 epochs (of a few dozen to a few hundred utterances) and the source run's
    learning rates by default."""

    rows: Annotated[List[Literal[tuple(studies.ROWS)]], Field(min_length=1)] = ["m4ser"]
    shots: Annotated[List[Positive], Field(min_length=1)] = list(studies.PAPER_SHOTS)
    draws: Positive = 5
    finetune_epochs: Positive = 10
    finetune_lr: Optional[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = None

    _shots = field_validator("shots", mode="before")(study_runner.comma_list)


def notes(study, training, encoders):
    """The protocol lines printed under the table (``training``: direction ->
    ``study_runner.training_settings`` of its fine-tuning runs; ``encoders``: row -> the
    encoders of its runs)."""
    options = study.options
    return [
        *(study_runner.training_note(d, t, "fine-tunes") for d, t in training.items()),
        study_runner.encoders_note(encoders),
        f"{options.draws} seeded draws per shot size from the target validation part "
        f"({options.target_valid_ratio:.0%} of the target corpus, seed {options.split_seed}); "
        "the rest of it selects the checkpoint (MELD: best W-F1, IEMOCAP: best UA); "
        f"test: the fixed {1 - options.target_valid_ratio:.0%}.",
        f"Fine-tuned for {options.finetune_epochs} epochs (lr: "
        f"{options.finetune_lr or 'as the source run'}) from the best checkpoint of the "
        f"cross-corpus run (model selection of that run: {options.select_on} validation); "
        "that start, scored on the same validation part, is a selection candidate too.",
        "ACC = WA (overall accuracy); W-F1 = support-weighted F1; UA = mean per-class recall.",
        f"Run overrides: {study.overrides or 'none'}.",
    ]


def finetune_extra(options):
    """The keys a fine-tuning run sets over its source's settings (``init_from`` aside)."""
    extra = {"number_of_epochs": options.finetune_epochs}
    if options.finetune_lr is not None:
        extra["lr"] = options.finetune_lr
    return extra


def finetune_plan(study, direction, row, paths, shot_paths, shots, draw, init_from):
    """A fine-tuning run: trained on the shots, selected on the rest of the target validation
    part (with the target's metric), tested on the fixed test part, started from ``init_from``."""
    extra = {**finetune_extra(study.options), "init_from": init_from}
    target = studies.DIRECTIONS[direction][1]
    return study_runner.plan(study, direction, study_runner.run_overrides(
        study, direction, row, {**paths, **shot_paths},
        study_runner.run_folder(study, direction, row, shots, draw), extra=extra,
        valid_corpus=target))


def source_start(study, direction, row):
    """(save folder, selection metric, origin) of the source run's best checkpoint."""
    source, target, _ = studies.DIRECTIONS[direction]
    max_key = studies.SELECTION_METRICS[target if study.options.select_on == "target" else source]
    save = study_runner.run_folder(study, direction, row) / "save"
    return save, max_key, finetuning.checkpoint_origin(save, max_key=max_key)


def finetune(run, start, label):
    """Seed ``run``'s save folder from the source checkpoint (its folder claimed first, with its
    identity), then train it; returns its test metrics. A finished run is skipped."""
    from m4ser_lobes.experiment import run as runs
    from m4ser_lobes.utils.runlock import hold

    save, max_key, origin = start
    if study_runner.run_state(run) != "done":
        with hold(run.output_folder):  # released before train() takes it
            # the identity first (--overwrite=True: the old folder is moved aside here), so
            # that the seeded checkpoint is this run's work
            runs.claim_folder(run, runs.manifests_of(run.values))
            lrs = {name: run.values[f"lr_{name}"]
                   for name in ("speech_encoder", "text_encoder", "head", "discriminator")}
            finetuning.seed_finetune_checkpoint(save, run.values["save_folder"], lrs=lrs,
                                                max_key=max_key, origin=origin)
    return study_runner.train_run(run, label)


def main(argv):
    """Train (or skip) the source runs and every fine-tuning run; write the table."""
    study = study_runner.parse_command_line(argv, Options, COMMAND, __doc__)
    options = study.options
    shots, rows = sorted(set(options.shots)), options.rows
    pools = study_runner.prepare_pools(study, rows)
    sources, planned, data = {}, [], {}
    for direction in options.directions:
        paths = study_runner.write_direction_data(options, pools, direction)
        data[direction] = str(paths["folder"])
        for row in rows:
            sources[(direction, row)] = study_runner.source_plan(study, direction, row, paths)
        for draw in range(options.draws):
            for k in shots:
                shot_paths = study_runner.write_shot_data(options, paths, k, draw)
                planned += [(direction, row, k, draw, paths, shot_paths) for row in rows]
    # Everything is checked before anything trains; a fine-tuning start is known (and
    # compared) when its source run has finished.
    study_runner.precheck(sources.values())
    starts = {key: source_start(study, *key) if study_runner.run_state(run) == "done" else None
              for key, run in sources.items()}
    for direction, row, k, draw, paths, shot_paths in planned:
        start = starts[(direction, row)]
        run = finetune_plan(study, direction, row, paths, shot_paths, k, draw,
                            start and start[2]["model_sha1"])
        study_runner.precheck([run], start_known=start is not None)
    for (direction, row), run in sources.items():
        study_runner.train_run(run, f"{direction} {row} (source)")
    results, tuned = {}, {}
    for direction, row, k, draw, paths, shot_paths in planned:
        if starts[(direction, row)] is None:
            starts[(direction, row)] = source_start(study, direction, row)
        start = starts[(direction, row)]
        run = finetune_plan(study, direction, row, paths, shot_paths, k, draw,
                            start[2]["model_sha1"])
        metrics = finetune(run, start, f"{direction} {row} {k}-shot draw {draw}")
        results.setdefault((row, direction, k), []).append(metrics)
        tuned[(row, direction, k, draw)] = run
    encoders = study_runner.encoders_of((key[0], run) for key, run in tuned.items())
    table = studies.few_shot_table(results, rows=rows, shots=shots, encoders=encoders)
    table["data"] = data
    extra = tuple(finetune_extra(options))
    table["training"] = {direction: study_runner.training_settings(study, direction, run, extra)
                         for (_, direction, _, _), run in tuned.items()}
    return study_runner.publish(table, study, "few_shot",
                                notes(study, table["training"], encoders))


if __name__ == "__main__":
    study_runner.command_line(main)
