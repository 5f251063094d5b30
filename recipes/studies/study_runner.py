"""What ``cross_corpus.py`` and ``few_shot.py`` share: command line, data, runs, tables.

A study is a set of ordinary runs (:mod:`m4ser_lobes.experiment.run`). Its command line is
SpeechBrain's, parsed once (``speechbrain.parse_arguments``): ``HPARAMS --key=value ...``; the
study's own options are checked by a pydantic model (:class:`StudyOptions` and the script's
subclass), every other key is an override of every run, and the keys the study sets itself
(:data:`STUDY_KEYS`) are refused. The study prepares both corpora
(:func:`m4ser_lobes.corpora.iemocap.prepare_iemocap`, :func:`m4ser_lobes.corpora.meld.prepare_meld`),
maps them to the four shared classes (``m4ser_lobes.experiment.studies.LABEL_MAPS``), writes the
manifests of each direction into a keyed folder of ``<study_folder>/data/``, and plans each run as
``plan_run(hparams, {<source's Table I>, ..., "skip_prep": True, "train_annotation": ...},
study_corpus(direction))``: IEMOCAP's section (it fits both directions, as both use 4 classes)
named after the direction; the training settings are the source corpus's column of Table I
(``studies.table_i_settings``: MELD's lr 1e-4 for ME→IE), under the command line's overrides.
MELD's mis-cut clips are trimmed in all three of its splits: the study pools them, so its
official test split has no special role here and would otherwise train ME→IE on minutes of
other dialogue.

Finished work is recognised one way, by each run's identity (:mod:`m4ser_lobes.utils.identity`):
its settings, the content of its manifests and, for a fine-tuning run, its start (``init_from``,
the digest of the source checkpoint). Every run is planned and checked before any trains: one
whose folder holds its test results with the same identity is skipped, one made with other
settings, data or start is refused (``--overwrite=True`` replaces it). Other split options
(``--split_seed`` ...) or another corpus content give another keyed data folder, so the runs of
the former split are refused, never mixed. The runs train one after the other in this process
(one device; not under ``torchrun``).

Layout of ``<study_folder>`` (default ``results/studies``; both commands share it, so the
few-shot study fine-tunes the cross-corpus runs)::

    prepared/{iemocap,meld}/                    the corpora's own data prep
    data/<direction>/<key>/                     train valid test target_valid hypotheses split .json
                                                + identity.json (key: split options, mapped corpora)
    data/<direction>/<key>/shots/draw<d>/k<k>/  train.json valid.json (few-shot)
    runs/<direction>/<row>/source/              a cross-corpus run (its output folder)
    runs/<direction>/<row>/k<k>/draw<d>/        a few-shot fine-tuning run
    cross_corpus.{md,json}  few_shot.{md,json}
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from pydantic import field_validator

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.experiment import run as runs
from m4ser_lobes.experiment import studies
from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.utils import identity as ident
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)

#: Keys the study sets for every run; given on the command line they are refused.
STUDY_KEYS = ("skip_prep", "data_folder", "hypotheses_file", "output_folder", "experiment_name",
              "train_annotation", "valid_annotation", "test_annotation", "init_from",
              "use_msr", "use_mir", "use_aed", "use_aec", "use_gan", "use_lcl", "num_emotions",
              "selection_metric")
#: What each required or path option names (for the one-line errors).
WHAT = {"iemocap_folder": "the IEMOCAP_full_release folder", "meld_folder": "the MELD.Raw folder",
        "iemocap_hypotheses": "an ASR cache (python -m m4ser_lobes.text.asr)",
        "meld_hypotheses": "an ASR cache (python -m m4ser_lobes.text.asr)"}
PARTS = ("train", "valid", "test", "target_valid")
Ratio = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


def comma_list(value):
    """A list option: ``a,b`` (one command-line string), one value, or a YAML list.

    Example
    -------
    >>> comma_list("baseline, m4ser"), comma_list("5,10"), comma_list(5), comma_list([1, 2])
    (['baseline', 'm4ser'], [5, 10], [5], [1, 2])
    """
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
        return [int(v) if v.isdigit() else v for v in items]
    return [value] if isinstance(value, (int, float)) else value


class StudyOptions(BaseModel):
    """The options both studies take (``--key=value``); any other key goes to every run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iemocap_folder: Path                       # IEMOCAP_full_release
    meld_folder: Path                          # MELD.Raw
    iemocap_hypotheses: Optional[Path] = None  # ASR caches; null with --text_source=transcript
    meld_hypotheses: Optional[Path] = None
    subset: StrictBool = False                 # True: do not assert the full releases' counts
    study_folder: Path = Path("results/studies")
    directions: Annotated[List[Literal[tuple(studies.DIRECTIONS)]], Field(min_length=1)] = \
        list(studies.DIRECTIONS)
    rows: Annotated[List[Literal[tuple(studies.ROWS)]], Field(min_length=1)] = list(studies.ROWS)
    split_seed: StrictInt = 1986               # target 30/70 split, source hold-out, shot draws
    target_valid_ratio: Ratio = studies.TARGET_VALID_RATIO
    # Model selection of the cross-corpus runs: `target` = the target's 30 % validation part
    # (the paper: "30% of the target corpus is reserved for validation for parameter tuning");
    # `source` = a stratified hold-out of the source corpus (the target stays unseen).
    select_on: Literal["target", "source"] = "target"
    source_valid_ratio: Ratio = 0.1
    meld_workers: Annotated[StrictInt, Field(ge=1)] = 2  # MELD decoding processes

    _lists = field_validator("directions", "rows", mode="before")(comma_list)

    @field_validator("iemocap_folder", "meld_folder")
    @classmethod
    def _is_folder(cls, value, info):
        if not value.is_dir():
            raise ValueError(f"not a folder; pass {WHAT[info.field_name]}")
        return value

    @field_validator("iemocap_hypotheses", "meld_hypotheses")
    @classmethod
    def _is_file(cls, value, info):
        if value is not None and not value.is_file():
            raise ValueError(f"not a file; pass {WHAT[info.field_name]}, or null")
        return value


def one_line(error: ValidationError, given, command):
    """The first problem of a study option as one line naming the option and the fix."""
    problem = error.errors()[0]
    key = str(problem["loc"][0])
    if problem["type"] == "missing":
        return f"{command}: --{key} is missing: pass --{key}=<{WHAT.get(key, 'value')}>"
    if problem["type"] == "extra_forbidden":
        return f"{command}: --{key} is not a study option"
    message = problem["msg"].removeprefix("Value error, ").replace("Input should", "it should")
    return f"{command}: --{key}={given.get(key)!r}: {message}"


@dataclass(frozen=True)
class Study:
    """A parsed study command line: the model YAML, the study's options, the runs' overrides."""

    command: str
    hparams_file: str
    options: StudyOptions
    overrides: dict
    run_opts: object = None

    @property
    def folder(self):
        return Path(self.options.study_folder)


def parse_command_line(argv, options_class, command, doc):
    """``HPARAMS [--key=value ...]`` -> :class:`Study`; ``--help`` prints ``doc`` and exits 0.

    Raises
    ------
    m4ser_lobes.experiment.studies.StudyError
        A bad study option, a key the study sets itself, a key of neither (one line).
    """
    import speechbrain as sb

    argv = [str(a) for a in argv]
    if "-h" in argv or "--help" in argv:
        print(doc)
        raise SystemExit(0)
    if not argv or argv[0].startswith("-"):
        raise studies.StudyError(
            f"usage: python {command} hparams/m4ser.yaml --iemocap_folder=DIR --meld_folder=DIR "
            f"[--key=value ...]  (python {command} --help: the protocol and every option)")
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    given = runs.overrides_dict(overrides)
    study = ident.canonical({k: v for k, v in given.items() if k in options_class.model_fields})
    overrides = {k: v for k, v in given.items() if k not in options_class.model_fields}
    refused = sorted(set(overrides) & set(STUDY_KEYS))
    if refused:
        raise studies.StudyError(f"{command}: --{refused[0]} is set by the study for every run "
                                 "(the rows set the switches); remove it")
    try:
        options = options_class.model_validate(study)
    except ValidationError as error:
        raise studies.StudyError(one_line(error, study, command)) from None
    try:
        runs.check_known_keys(hparams_file, IEMOCAP, overrides)
    except ConfigError as error:
        raise studies.StudyError(f"{command}: {error}; the study's own options are --"
                                 + ", --".join(options_class.model_fields)) from None
    return Study(command, hparams_file, options, overrides, run_opts)


# ------------------------------------------------------------------------------ runs
def run_folder(study, direction, row, shots=None, draw=None):
    """Output folder of one run."""
    base = study.folder / "runs" / direction / row
    return base / "source" if shots is None else base / f"k{shots}" / f"draw{draw}"


def _absolute(path):
    return None if path is None else str(Path(path).resolve())


def run_overrides(study, direction, row, paths, output_folder, extra=None, valid_corpus=None):
    """The overrides of one run: its source corpus's Table I settings, under the command line's
    overrides and ``extra``; its checkpoint is selected with the metric of the corpus of its
    validation part (``valid_corpus``; default: as ``--select_on`` says)."""
    source, target, _ = studies.DIRECTIONS[direction]
    if valid_corpus is None:
        valid_corpus = target if study.options.select_on == "target" else source
    return {
        **studies.table_i_settings(source, exclude=STUDY_KEYS),
        **study.overrides,
        **(extra or {}),
        "skip_prep": True,
        "data_folder": _absolute(getattr(study.options, f"{source}_folder")),
        "hypotheses_file": _absolute(paths["hypotheses"]),
        "num_emotions": len(studies.SHARED_CLASSES),
        "selection_metric": studies.SELECTION_METRICS[valid_corpus],
        "experiment_name": f"{direction}-{row}",
        "output_folder": _absolute(output_folder),
        "train_annotation": _absolute(paths["train"]),
        "valid_annotation": _absolute(paths["valid"]),
        "test_annotation": _absolute(paths["test"]),
        **studies.ROWS[row][1],
    }


def plan(study, direction, overrides):
    """:func:`m4ser_lobes.experiment.run.plan_run` of one run of the study (checked, not built)."""
    return runs.plan_run(study.hparams_file, overrides, studies.study_corpus(direction),
                         study.run_opts)


def source_plan(study, direction, row, paths):
    """The cross-corpus run of a row and direction."""
    return plan(study, direction, run_overrides(study, direction, row, paths,
                                     run_folder(study, direction, row)))


def conflict(run, start_known=True):
    """What differs between ``run`` and the work its folder holds, or None.

    The settings are :func:`m4ser_lobes.experiment.run.recorded_conflict`'s; the data digest and
    the start (``init_from``) of the recorded identity are compared here too, as the study's
    manifests exist before any run trains (``start_known=False``: the source run that gives the
    start has not trained yet).
    """
    found = runs.recorded_conflict(run)
    record = ident.read(run.output_folder)
    if found is not None or record is None or not runs.holds_run(run.output_folder):
        return found
    now = ident.canonical(runs.run_identity(run, runs.manifests_of(run.values)))
    keys = ("data", "init_from") if start_known else ("data",)
    changes = ident.differences({k: record["identity"].get(k) for k in keys},
                                {k: now[k] for k in keys})
    if not changes:
        return None
    return (f"{run.output_folder} holds work made from other data or another start "
            f"({'; '.join(changes)}: the split options, the corpora or the source run changed)")


def refused(found):
    """The one-line refusal of a study run whose folder holds other work."""
    return ConfigError(f"{found}. Keep those runs and start apart with a new "
                       "--study_folder=<folder>, or replace them with --overwrite=True (the old "
                       "folders are moved aside, not deleted)")


def run_state(run, start_known=True):
    """``"done"`` (test results, same identity) or ``"todo"``; work made otherwise is refused
    (unless ``--overwrite=True``: then :func:`m4ser_lobes.experiment.run.train` moves it aside)."""
    found = conflict(run, start_known)
    if found is not None:
        if run.values["overwrite"]:
            return "todo"
        raise refused(found)
    return "done" if runs.is_finished(run) else "todo"


def precheck(plans, start_known=True):
    """Refuse before any training when one of the planned runs meets other work."""
    for run in plans:
        run_state(run, start_known)


def train_run(run, label):
    """Train ``run`` (:func:`m4ser_lobes.experiment.run.train`) unless finished; its test metrics."""
    if run_state(run) == "done":
        logger.info("%s: finished (%s/test_metrics.json), skipped", label, run.output_folder)
        print(f"[study] {label}: finished, skipped", flush=True)
    else:
        print(f"[study] {label}: training in {run.output_folder}", flush=True)
        with runs.restore_root_logging():
            runs.train(run)
    return studies.read_json(run.output_folder / "test_metrics.json")


#: The training settings each direction takes from its source corpus's column of Table I.
TRAINING_KEYS = ("lr", "batch_size", "number_of_epochs")


def training_settings(study, direction, run, extra=()):
    """What ``run`` of ``direction`` trains with, for the tables: ``source`` (corpus),
    ``column`` (the file of its Table I column), ``settings`` (key -> value as planned: lr,
    batch size, epochs, any learning rate of its own) and ``overridden`` (keys set on the
    command line, or by the study: ``extra``, over the column)."""
    source = studies.DIRECTIONS[direction][0]
    column = studies.table_i_settings(source, exclude=STUDY_KEYS)
    values = run.values
    keys = list(dict.fromkeys([*TRAINING_KEYS, *column]))
    keys += [k for k in sorted(values) if k.startswith("lr_") and k not in keys
             and values[k] != values["lr"]]
    data_file = Path(studies.corpus_of(source).data_file)
    return {"source": studies.corpus_of(source).name,
            "column": f"{data_file.parent.name}/{data_file.name}" if column else
            str(study.hparams_file),
            "settings": {k: values[k] for k in keys if k in values},
            "overridden": sorted(k for k in keys if k in study.overrides or k in extra)}


def training_note(direction, training, what="trains"):
    """One line of a table's notes from :func:`training_settings`."""
    settings = ", ".join(f"{k} {v}" for k, v in training["settings"].items())
    line = (f"{studies.DIRECTIONS[direction][2]} {what} with the Table I settings of its source, "
            f"{training['source']} ({training['column']}): {settings}")
    if training["overridden"]:
        line += f" (set for this study: {', '.join(training['overridden'])})"
    return line + "."


def encoders_of(runs_by_row):
    """Row -> the encoders its runs used (their ``configuration.json``), for the tables."""
    labels = {}
    for row, run in runs_by_row:
        path = run.output_folder / runs.CONFIGURATION_FILE
        label = studies.encoders_label(studies.read_json(path)) if path.is_file() else None
        if label:
            labels.setdefault(row, set()).add(label)
    return {row: " / ".join(sorted(names)) for row, names in labels.items()}


def encoders_note(encoders):
    """The notes' line naming our encoders beside the paper's."""
    ours = sorted(set(encoders.values()))
    return (f"Our encoders: {' / '.join(ours) or 'none finished'} (configuration.json of the "
            "runs); the paper's: HuBERT + BERT.")


# ------------------------------------------------------------------------------ data
def text_source(study, rows):
    """Plan each row once on placeholder manifests, so that the runs' overrides are checked
    before any data prep; returns the runs' ``text_source``."""
    placeholder = {name: study.folder / "planned.json" for name in ("train", "valid", "test")}
    direction = study.options.directions[0]
    dummy = {**placeholder, "hypotheses": placeholder["train"]}
    planned = [plan(study, direction, run_overrides(study, direction, row, dummy,
                                                    run_folder(study, direction, row)))
               for row in rows]
    return planned[0].values["text_source"]


def prepare_pools(study, rows):
    """Check the runs' overrides, prepare both corpora (their own data prep) and map them:
    corpus -> id -> entry."""
    from m4ser_lobes.corpora import iemocap, meld

    options = study.options
    if text_source(study, rows) == "hypothesis":
        for corpus in studies.CORPORA:
            if getattr(options, f"{corpus}_hypotheses") is None:
                raise studies.StudyError(
                    f"text_source=hypothesis needs --{corpus}_hypotheses=<ASR cache> (python -m "
                    "m4ser_lobes.text.asr), or train on human transcripts with "
                    "--text_source=transcript")
    root = study.folder / "prepared"
    iemocap.prepare_iemocap(
        options.iemocap_folder, root / "iemocap", hypotheses=options.iemocap_hypotheses,
        folds=(1,), expected_utterances=None if options.subset else
        iemocap.DEFAULT_EXPECTED_UTTERANCES)
    meld.prepare_meld(
        options.meld_folder, root / "meld", hypotheses=options.meld_hypotheses,
        expected_counts=None if options.subset else meld.FULL_RELEASE,
        num_workers=options.meld_workers, trim_miscut=tuple(meld.SPLITS))
    manifests = {"iemocap": [root / "iemocap" / "fold1" / f"{s}.json" for s in iemocap.SPLITS],
                 "meld": [root / "meld" / f"{s}.json" for s in ("train", "valid", "test")]}
    pools = {}
    for corpus, paths in manifests.items():
        entries = {}
        for path in paths:
            entries.update(studies.read_json(path))
        pools[corpus] = studies.map_entries(entries, corpus)
        studies.check_all_classes(pools[corpus], f"{corpus} ({root / corpus})")
    return pools


def direction_identity(options, pools, direction):
    """What the manifests of a direction are made from: the split options and the corpora."""
    source, target, _ = studies.DIRECTIONS[direction]
    identity = {"direction": direction, "split_seed": options.split_seed,
                "target_valid_ratio": options.target_valid_ratio, "select_on": options.select_on,
                "corpora": {c: ident.digest(pools[c], length=16) for c in (source, target)}}
    if options.select_on == "source":
        identity["source_valid_ratio"] = options.source_valid_ratio
    return identity


def write_direction_data(options, pools, direction):
    """Manifests of a direction's cross-corpus runs in their keyed folder (written once);
    returns their paths (``train`` ... ``target_valid``, ``hypotheses`` or None, ``folder``)."""
    source, target, _ = studies.DIRECTIONS[direction]
    identity = direction_identity(options, pools, direction)
    folder = Path(ident.keyed_folder(Path(options.study_folder) / "data" / direction, **identity))
    paths = {name: folder / f"{name}.json" for name in PARTS}
    if not ident.is_done(folder, identity):
        src, tgt = pools[source], pools[target]
        t_valid, t_test = studies.stratified_split({u: e["emo"] for u, e in tgt.items()},
                                                   options.target_valid_ratio, options.split_seed)
        if options.select_on == "source":
            s_valid, s_train = studies.stratified_split(
                {u: e["emo"] for u, e in src.items()}, options.source_valid_ratio,
                options.split_seed)
            parts = {"train": {u: src[u] for u in s_train}, "valid": {u: src[u] for u in s_valid}}
        else:
            parts = {"train": dict(src), "valid": {u: tgt[u] for u in t_valid}}
        parts["test"] = {u: tgt[u] for u in t_test}
        parts["target_valid"] = {u: tgt[u] for u in t_valid}
        for name, entries in parts.items():
            studies.check_all_classes(entries, f"{direction} {name} part")
            atomic_write_json(paths[name], entries)
        hyps = {u: e["hypothesis"] for p in (src, tgt) for u, e in p.items()
                if e.get("hypothesis") is not None}
        if hyps:
            atomic_write_json(folder / "hypotheses.json", {"hypotheses": dict(sorted(hyps.items()))})
        atomic_write_json(folder / "split.json", {
            "source": source, "target": target, "select_on": options.select_on,
            "counts": {n: studies.class_counts(e) for n, e in parts.items()}})
        ident.mark_done(folder, identity)
    hypotheses = folder / "hypotheses.json"
    return {**paths, "hypotheses": hypotheses if hypotheses.is_file() else None, "folder": folder}


def write_shot_data(options, paths, shots, draw):
    """Manifests of one few-shot draw (written once, below the direction's keyed folder):
    ``shots`` per class to train, the rest of the target validation part to select."""
    folder = paths["folder"] / "shots" / f"draw{draw}" / f"k{shots}"
    out = {"train": folder / "train.json", "valid": folder / "valid.json"}
    identity = {"shots": shots, "draw": draw}  # the rest is the direction folder's key
    if not ident.is_done(folder, identity):
        valid = studies.read_json(paths["target_valid"])
        train_ids, rest_ids = studies.draw_shots({u: e["emo"] for u, e in valid.items()}, shots,
                                                 options.split_seed, draw)
        atomic_write_json(out["train"], {u: valid[u] for u in train_ids})
        atomic_write_json(out["valid"], {u: valid[u] for u in rest_ids})
        ident.mark_done(folder, identity)
    return out


# ------------------------------------------------------------------------------ tables
def publish(table, study, name, notes):
    """Write ``<study_folder>/<name>.md`` and ``.json`` (with ``notes``), print the table."""
    json_path, md_path = studies.write_table(table, study.folder / name, notes)
    print(studies.table_markdown(table))
    print(f"[study] wrote {md_path} and {json_path}")
    return table


def command_line(main):
    """Run a study script's ``main(sys.argv[1:])``; a refused study exits with one line."""
    import m4ser_lobes.checkpoints  # noqa: F401 (its hook registrations log at import: before the handler)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with runs.one_line_errors():
        return main(sys.argv[1:])
