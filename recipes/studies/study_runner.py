"""What ``cross_corpus.py`` and ``few_shot.py`` share: options, data, runs, tables.

A study prepares both corpora with their own data prep (``recipes/IEMOCAP/iemocap_prepare.py``,
``recipes/MELD/meld_prepare.py``), maps them to the four shared classes
(``m4ser_lobes.experiment.studies.LABEL_MAPS``), writes the manifests of every run into
``<study_folder>/data/`` and runs ``recipes/IEMOCAP/train.py``'s ``main(argv)`` once per run
with manifest overrides (``--skip_prep=True --train_annotation=... --output_folder=...``): the
IEMOCAP configuration fits both directions, as both use 4 classes. Everything about a run
(validation of the values, fingerprint, refusal of changed settings, checkpoints, test) is
``train.py``'s; a run whose folder holds ``test_metrics.json`` with the same settings is skipped.
The runs are trained one after the other in this process (one device; not under ``torchrun``).

Layout of ``<study_folder>`` (default ``results/studies``; both commands share it, so the
few-shot study fine-tunes the cross-corpus runs)::

    study.json                          split settings + digests of the mapped corpora
    prepared/{iemocap,meld}/            the corpora's own data prep
    data/<direction>/                   train.json valid.json test.json target_valid.json
                                        hypotheses.json split.json
    data/<direction>/shots/draw<d>/k<k>/  train.json valid.json (few-shot)
    runs/<direction>/<row>/source/      the cross-corpus run (train.py's output folder)
    runs/<direction>/<row>/k<k>/draw<d>/  a few-shot fine-tuning run (init.json: its start)
    cross_corpus.{md,json}  few_shot.{md,json}
"""

from __future__ import annotations

import logging
from pathlib import Path

from m4ser_lobes.experiment import config, studies
from m4ser_lobes.experiment.config import digest
from m4ser_lobes.utils.fileio import atomic_write_json
from m4ser_lobes.testing.models import override_argv

REPO = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = REPO / "recipes" / "IEMOCAP" / "train.py"
logger = logging.getLogger(__name__)

#: Study options (``--key=value``) -> default; everything else goes to every run of train.py.
COMMON_OPTIONS = {
    "iemocap_folder": None,       # IEMOCAP_full_release
    "meld_folder": None,          # MELD.Raw
    # ASR caches (m4ser_lobes.text.asr); null with --text_source=transcript
    "iemocap_hypotheses": None,
    "meld_hypotheses": None,
    "subset": False,              # True: do not assert the full releases' counts
    "study_folder": "results/studies",
    "directions": "ie2me,me2ie",
    "split_seed": 1986,           # target 30/70 split, source hold-out, few-shot draws
    "target_valid_ratio": studies.TARGET_VALID_RATIO,
    # Model selection of the cross-corpus runs: `target` = the target's 30 % validation part
    # (the paper: "30% of the target corpus is reserved for validation for parameter tuning");
    # `source` = a stratified hold-out of the source corpus (the target stays unseen).
    "select_on": "target",
    "source_valid_ratio": 0.1,
    "meld_workers": 2,            # MELD decoding processes
}
#: Keys the study sets for every run; given on the command line they are refused.
STUDY_KEYS = ("skip_prep", "data_folder", "hypotheses_file", "output_folder", "experiment_name",
              "train_annotation", "valid_annotation", "test_annotation",
              "use_msr", "use_mir", "use_aed", "use_aec", "use_gan", "use_lcl", "num_emotions",
              "selection_metric")


class Options(dict):
    """Parsed study options (attribute access), with ``hparams_file`` and ``passthrough``."""

    __getattr__ = dict.__getitem__


def _yaml_value(text):
    """A command-line value read as YAML 1.2, as train.py reads its overrides (``1e-5`` is a
    number, ``True`` a boolean, ``null`` None)."""
    import ruamel.yaml

    return ruamel.yaml.YAML(typ="safe", pure=True).load(text)


def parse_args(argv, extra_options, command):
    """``HPARAMS [--key=value ...]`` -> :class:`Options`; unknown keys pass through to train.py.

    Values are read as YAML (``--subset=True``, ``--split_seed=3``); ``rows``, ``directions`` and
    ``shots`` are comma-separated lists.
    """
    defaults = {**COMMON_OPTIONS, **extra_options}
    if not argv or argv[0].startswith("--"):
        raise studies.StudyError(f"usage: python {command} hparams/m4ser.yaml --iemocap_folder=DIR "
                                 "--meld_folder=DIR [--key=value ...]")
    options = Options(defaults, hparams_file=argv[0], passthrough={}, flags=[])
    for token in argv[1:]:
        if not token.startswith("--"):
            raise studies.StudyError(f"{command}: {token!r}: options are --key=value")
        key, eq, value = token[2:].partition("=")
        if not eq:
            options["flags"].append(token)  # --noprogressbar and other run flags
        elif key in defaults:
            options[key] = _yaml_value(value) if value else None
        elif key in STUDY_KEYS:
            raise studies.StudyError(f"{command}: --{key} is set by the study for every run "
                                     "(rows set the switches); remove it")
        else:
            options["passthrough"][key] = value
    for key in ("rows", "directions", "shots"):
        if key in options and options[key] is None:
            options[key] = []
        if key in options and isinstance(options[key], (str, int)):
            options[key] = [v.strip() for v in str(options[key]).split(",") if v.strip()]
    unknown = [r for r in options["rows"] if r not in studies.ROWS]
    if unknown or not options["rows"]:
        raise studies.StudyError(f"--rows: unknown {unknown}; choose among {list(studies.ROWS)}")
    unknown = [d for d in options["directions"] if d not in studies.DIRECTIONS]
    if unknown or not options["directions"]:
        raise studies.StudyError(f"--directions: unknown {unknown}; choose among "
                                 f"{list(studies.DIRECTIONS)}")
    if options["select_on"] not in ("target", "source"):
        raise studies.StudyError(f"--select_on={options['select_on']!r}: choose target or source")
    for corpus in studies.CORPORA:
        folder = options[f"{corpus}_folder"]
        if folder is None or not Path(folder).is_dir():
            raise studies.StudyError(f"--{corpus}_folder={folder}: not a folder; pass the "
                                     + ("IEMOCAP_full_release" if corpus == "iemocap"
                                        else "MELD.Raw") + " folder")
    return options


# ------------------------------------------------------------------------------ data
def _import_prep(corpus):
    from m4ser_lobes.testing.models import import_script

    folder = REPO / "recipes" / ("IEMOCAP" if corpus == "iemocap" else "MELD")
    name = f"{corpus}_prepare"  # the name the corpus's train.py imports it by
    return import_script(folder / f"{name}.py", name=name)


def _text_source(options):
    import speechbrain as sb

    from m4ser_lobes.experiment.config import load_values

    argv = [options.hparams_file, "--data_folder=unused"]
    argv += [f"--{k}={v}" for k, v in options.passthrough.items()]
    hparams_file, _, overrides = sb.parse_arguments(argv)
    return load_values(hparams_file, overrides)["text_source"]


def prepare_pools(options):
    """Prepare both corpora (their own data prep) and map them: corpus -> id -> entry."""
    needs_hyps = _text_source(options) == "hypothesis"
    for corpus in studies.CORPORA:
        if needs_hyps and options[f"{corpus}_hypotheses"] is None:
            raise studies.StudyError(
                f"text_source=hypothesis needs --{corpus}_hypotheses=<ASR cache> (python -m "
                "m4ser_lobes.text.asr), or train on human transcripts with "
                "--text_source=transcript")
    root = Path(options.study_folder) / "prepared"
    iemocap, meld = _import_prep("iemocap"), _import_prep("meld")
    iemocap.prepare_iemocap(
        options.iemocap_folder, root / "iemocap", hypotheses=options.iemocap_hypotheses,
        folds=(1,), expected_utterances=None if options.subset else
        iemocap.DEFAULT_EXPECTED_UTTERANCES)
    meld.prepare_meld(
        options.meld_folder, root / "meld", hypotheses=options.meld_hypotheses,
        expected_counts=None if options.subset else meld.FULL_RELEASE,
        num_workers=options.meld_workers)
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


def _pool_digest(entries):
    return digest({u: [e["emo"], e.get("hypothesis"), e.get("transcript")]
                   for u, e in sorted(entries.items())})


def check_study_record(options, pools):
    """``study.json``: the split settings and corpus digests; a change is refused."""
    record = {
        "split_seed": options.split_seed,
        "target_valid_ratio": options.target_valid_ratio,
        "select_on": options.select_on,
        "source_valid_ratio": options.source_valid_ratio,
        "corpora": {c: _pool_digest(p) for c, p in sorted(pools.items())},
    }
    path = Path(options.study_folder) / "study.json"
    if path.is_file():
        old = studies.read_json(path)
        changed = config.settings_differences(old, record)
        if changed:
            raise studies.StudyError(
                f"{path} records a study with other splits or data ({'; '.join(changed)}): its "
                "runs would mix with this one. Pass a new --study_folder=<folder> (or delete "
                f"{path.parent})")
    else:
        atomic_write_json(path, record)
    return record


def write_direction_data(options, pools, direction):
    """Manifests of a direction's cross-corpus run; returns their paths and the target parts."""
    source, target, _ = studies.DIRECTIONS[direction]
    folder = Path(options.study_folder) / "data" / direction
    src, tgt = pools[source], pools[target]
    t_labels = {u: e["emo"] for u, e in tgt.items()}
    t_valid, t_test = studies.stratified_split(t_labels, options.target_valid_ratio,
                                               options.split_seed)
    if options.select_on == "source":
        s_valid, s_train = studies.stratified_split(
            {u: e["emo"] for u, e in src.items()}, options.source_valid_ratio, options.split_seed)
        parts = {"train": {u: src[u] for u in s_train}, "valid": {u: src[u] for u in s_valid}}
    else:
        parts = {"train": dict(src), "valid": {u: tgt[u] for u in t_valid}}
    parts["test"] = {u: tgt[u] for u in t_test}
    parts["target_valid"] = {u: tgt[u] for u in t_valid}
    paths = {}
    for name, entries in parts.items():
        studies.check_all_classes(entries, f"{direction} {name} part")
        paths[name] = folder / f"{name}.json"
        _write_if_changed(paths[name], entries)
    hyps = {u: e["hypothesis"] for p in (src, tgt) for u, e in p.items()
            if e.get("hypothesis") is not None}
    paths["hypotheses"] = None
    if hyps:
        paths["hypotheses"] = folder / "hypotheses.json"
        _write_if_changed(paths["hypotheses"], {"hypotheses": dict(sorted(hyps.items()))})
    _write_if_changed(folder / "split.json", {
        "source": source, "target": target, "select_on": options.select_on,
        "counts": {n: studies.class_counts(e) for n, e in parts.items()}})
    return paths


def write_shot_data(options, direction, paths, shots, draw):
    """Manifests of one few-shot draw: ``shots`` per class to train, the rest of the target
    validation part to select; returns their paths."""
    valid = studies.read_json(paths["target_valid"])
    train_ids, rest_ids = studies.draw_shots({u: e["emo"] for u, e in valid.items()}, shots,
                                             options.split_seed, draw)
    folder = Path(options.study_folder) / "data" / direction / "shots" / f"draw{draw}" / f"k{shots}"
    out = {"train": folder / "train.json", "valid": folder / "valid.json"}
    _write_if_changed(out["train"], {u: valid[u] for u in train_ids})
    _write_if_changed(out["valid"], {u: valid[u] for u in rest_ids})
    return out


def _write_if_changed(path, obj):
    import json

    path = Path(path)
    if path.is_file():
        with open(path, encoding="utf-8") as fin:
            if json.load(fin) == json.loads(json.dumps(obj)):
                return
    atomic_write_json(path, obj)


# ------------------------------------------------------------------------------ runs
def import_train():
    """``recipes/IEMOCAP/train.py`` as a module (a private name: no clash with other ``train``)."""
    from m4ser_lobes.testing.models import import_script

    return import_script(TRAIN_SCRIPT)


def run_folder(options, direction, row, shots=None, draw=None):
    """Output folder of one run."""
    base = Path(options.study_folder) / "runs" / direction / row
    return base / "source" if shots is None else base / f"k{shots}" / f"draw{draw}"


def run_argv(options, direction, row, paths, output_folder, extra=None, valid_corpus=None):
    """train.py's command line for one run; the checkpoint is selected with the metric of the
    corpus of its validation part (``valid_corpus``; default: as ``--select_on`` says)."""
    source, target, _ = studies.DIRECTIONS[direction]
    if valid_corpus is None:
        valid_corpus = target if options.select_on == "target" else source
    overrides = {
        **options.passthrough,
        **(extra or {}),
        "skip_prep": True,
        "data_folder": Path(options[f"{source}_folder"]).resolve(),
        "hypotheses_file": None if paths["hypotheses"] is None else paths["hypotheses"].resolve(),
        "num_emotions": len(studies.SHARED_CLASSES),
        "selection_metric": studies.SELECTION_METRICS[valid_corpus],
        "experiment_name": f"{direction}-{row}",
        "output_folder": Path(output_folder).resolve(),
        "train_annotation": Path(paths["train"]).resolve(),
        "valid_annotation": Path(paths["valid"]).resolve(),
        "test_annotation": Path(paths["test"]).resolve(),
        **studies.ROWS[row][1],
    }
    return override_argv(options.hparams_file, overrides, *options.flags)


def check_run(argv):
    """``(values, settings)`` of a run, checked exactly as train.py checks them."""
    import speechbrain as sb

    from m4ser_lobes.experiment import recipe

    corpus = import_train().IEMOCAP
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    overrides = recipe.recipe_overrides(hparams_file, overrides, corpus)
    return recipe.check_configuration(hparams_file, overrides, run_opts,
                                      {**config.SCHEMA, **corpus.rules})


def run_state(argv):
    """``"done"`` (test_metrics.json, same settings), ``"todo"``; changed settings raise
    train.py's own refusal (:func:`m4ser_lobes.experiment.config.rerun_error`)."""

    values, settings = check_run(argv)
    conflict = config.rerun_conflict(values["output_folder"], settings)
    if conflict is not None:
        if not values["overwrite"]:
            raise config.rerun_error(conflict)
        return "todo"
    done = (Path(values["output_folder"]) / "test_metrics.json").is_file()
    return "done" if done else "todo"


def train_run(argv, label):
    """Run train.py's ``main(argv)`` unless finished; returns its test metrics."""
    output_folder = None
    for token in argv:
        if token.startswith("--output_folder="):
            output_folder = Path(token.split("=", 1)[1])
    if run_state(argv) == "done":
        logger.info("%s: finished (%s/test_metrics.json), skipped", label, output_folder)
        print(f"[study] {label}: finished, skipped", flush=True)
    else:
        print(f"[study] {label}: training in {output_folder}", flush=True)
        from m4ser_lobes.experiment.recipe import restore_root_logging

        with restore_root_logging():
            import_train().main(argv)
    return studies.read_json(output_folder / "test_metrics.json")


def precheck(argvs):
    """Refuse before any training when one of the planned runs has changed settings."""
    for argv in argvs:
        run_state(argv)


def finetune_argv(options, direction, row, paths, shot_paths, shots, draw, extra):
    """train.py's command line for a few-shot run: train on the shots, select on the rest of
    the target validation part (with the target's metric), test on the fixed test part;
    ``extra``: the fine-tuning overrides (``number_of_epochs``, ``lr``)."""
    target = studies.DIRECTIONS[direction][1]
    return run_argv(options, direction, row, {**paths, **shot_paths},
                    run_folder(options, direction, row, shots, draw),
                    extra=extra, valid_corpus=target)


def source_metric(options, direction):
    """The validation metric that selected the source run's checkpoint."""
    source, target, _ = studies.DIRECTIONS[direction]
    return studies.SELECTION_METRICS[target if options.select_on == "target" else source]


def finetune_run(options, direction, row, paths, shot_paths, shots, draw, extra):
    """One few-shot run: seeded from the source run's best checkpoint, then train.py."""
    output = run_folder(options, direction, row, shots, draw)
    argv = finetune_argv(options, direction, row, paths, shot_paths, shots, draw, extra)
    source_save = run_folder(options, direction, row) / "save"
    max_key = source_metric(options, direction)
    origin = studies.checkpoint_origin(source_save, max_key=max_key)
    record = output / "init.json"
    if record.is_file() and studies.read_json(record) != origin:
        raise studies.StudyError(
            f"{output} was fine-tuned from another source checkpoint than "
            f"{origin['source_checkpoint']} ({record} differs): the source run changed. "
            f"Delete {output} or pass a new --study_folder")
    if run_state(argv) != "done":
        from m4ser_lobes.experiment import recipe

        values, settings = check_run(argv)
        conflict = config.rerun_conflict(output, settings)
        if conflict is not None:  # --overwrite=True: move it aside now, then seed the new run
            recipe.replace_run(output, conflict)
        save = Path(values["save_folder"])
        lrs = {name: values[f"lr_{name}"] for name in ("encoders", "head", "discriminator")}
        save.mkdir(parents=True, exist_ok=True)
        # The fingerprint first: a folder holding a checkpoint but no fingerprint is refused.
        config.record_fingerprint(output, settings)
        studies.seed_finetune_checkpoint(source_save, save, lrs=lrs, max_key=max_key,
                                         origin=origin)
        atomic_write_json(record, origin)
    return train_run(argv, f"{direction} {row} {shots}-shot draw {draw}")


def publish(table, options, name, notes):
    """Write ``<study_folder>/<name>.md`` and ``.json`` (with ``notes``), print the table."""
    json_path, md_path = studies.write_table(table, Path(options.study_folder) / name, notes)
    print(studies.table_markdown(table))
    print(f"[study] wrote {md_path} and {json_path}")
    return table


def command_line(main):
    """Run a study script's ``main(sys.argv[1:])``; a refused study exits with one line."""
    from m4ser_lobes.experiment.config import ConfigError
    from m4ser_lobes.experiment.recipe import command_line as recipe_command_line

    return recipe_command_line(main, errors=(ConfigError, studies.StudyError))
