"""A run is a value: :func:`plan_run` checks and resolves it, :func:`train` carries it out.

A corpus recipe (``recipes/IEMOCAP/train.py``) is SpeechBrain's argument parser and these two
calls; cross-validation, the studies, the grids and the benchmarks build the same values from
dicts::

    run = plan_run("hparams/m4ser.yaml", {"fold": 2, "use_gan": False}, IEMOCAP)
    brain = train(run)

:func:`plan_run` reads the model YAML with the corpus's data section (``corpus.data_file``)
and the overrides applied, checks every value (pydantic models of the model and the corpus, then
the cross-key rules) and returns a frozen :class:`Run`: its resolved values, the settings that
change results and its output folder. Nothing is built, prepared or written.

:func:`train` then, in this order (nothing loads weights before step 4):

1. holds the run folder's lock (one trainer per folder; a second launch is refused, naming the
   holder's PID and host);
2. prepares the manifests (``corpus.prepare``; skipped when done with the same options) and
   checks every split (audio decodes and is finite, label sets, no shared ids);
3. claims the output folder with the run's identity, its settings plus the *content* of its
   manifests (:mod:`m4ser_lobes.utils.identity`): same identity resumes, a larger
   ``number_of_epochs`` continues, anything else is refused unless ``--overwrite=True``;
4. builds the objects of the YAML, trains, keeps the checkpoint of the best
   ``selection_metric`` on valid and tests it (``test_metrics.json``, ``predictions.csv``,
   ``confusion_matrix.png``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from m4ser_lobes.data.labels import class_weights_of, write_label_statistics
from m4ser_lobes.experiment import settings as cfg
from m4ser_lobes.utils import identity as ident
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)
CONFIGURATION_FILE = "configuration.json"
#: Keys a finished run may change and go on with (recorded in ``identity.json``'s history).
CONTINUABLE = ("number_of_epochs",)


@dataclass(frozen=True)
class Run:
    """One training run, resolved and checked (nothing built).

    Attributes
    ----------
    hparams_file : str
        The model YAML.
    corpus : m4ser_lobes.corpora.Corpus
        Its data.
    overrides : dict
        Key -> value given by the caller (the command line's ``--key=value``), over the corpus
        file's values.
    run_opts : speechbrain.utils.run_opts.RunOptions
        SpeechBrain run options (``device``, ``precision``, ``debug`` ...); those given are in
        its ``overridden_args``.
    values : dict
        Every plain value of the YAML as the objects will see them.
    settings : dict
        The values that change what the run trains or reports (its fingerprint, before the data).
    """

    hparams_file: str
    corpus: object
    overrides: dict
    run_opts: object = None
    values: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def output_folder(self):
        return Path(self.values["output_folder"])

    @property
    def yaml_overrides(self):
        """The corpus file's section updated by :attr:`overrides`, as YAML text (tags kept)."""
        return merged_overrides(self.corpus.data_file, self.overrides)


# ------------------------------------------------------------------------------ overrides
def _yaml():
    import ruamel.yaml

    return ruamel.yaml.YAML()  # round trip: HyperPyYAML's tags (!ref, !apply:) survive


def overrides_dict(overrides):
    """``--key=value`` overrides as a dict: from SpeechBrain's YAML text, or a dict as it is.

    Example
    -------
    >>> overrides_dict("lr: 1e-3\\nuse_gan: False"), overrides_dict({"fold": 2}), overrides_dict(None)
    ({'lr': 0.001, 'use_gan': False}, {'fold': 2}, {})
    """
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    import ruamel.yaml

    try:
        loaded = _yaml().load(overrides) or {}
    except ruamel.yaml.constructor.DuplicateKeyError as error:
        raise cfg.ConfigError(f"a key is given twice on the command line ({error.problem}): "
                              "keep one --key=value") from None
    return {str(k): v for k, v in loaded.items()}


def merged_overrides(data_file, overrides):
    """One YAML text: ``data_file``'s keys updated by ``overrides`` (a key replaces the whole value).

    Example
    -------
    >>> path = getfixture("tmp_path") / "corpus.yaml"
    >>> _ = path.write_text("lr: 0.1\\nout: !ref <root>/x\\n")
    >>> print(merged_overrides(path, {"lr": 0.2}), end="")
    lr: 0.2
    out: !ref <root>/x
    """
    yaml = _yaml()
    merged = yaml.load(Path(data_file).read_text(encoding="utf-8")) or {}
    for key, value in overrides.items():
        merged[key] = value
    stream = io.StringIO()
    yaml.dump(merged, stream)
    return stream.getvalue()


def check_known_keys(hparams_file, corpus, overrides):
    """Refuse an override that names no key of the model YAML or the corpus file (a typo)."""
    if Path(hparams_file).resolve() == Path(corpus.data_file).resolve():
        raise cfg.ConfigError(
            f"{hparams_file} is {corpus.name}'s data section, which the recipe applies itself: "
            "pass the model YAML instead, e.g. hparams/m4ser.yaml")
    yaml = _yaml()
    known = set()
    for path in (hparams_file, corpus.data_file):
        with open(path, encoding="utf-8") as fin:
            known |= set(yaml.load(fin) or {})
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise cfg.ConfigError(
            f"--{unknown[0]} is not a key of {hparams_file} or {corpus.data_file}: check its "
            f"spelling (unknown: {', '.join(unknown)})")


# ------------------------------------------------------------------------------ plan
def plan_run(hparams_file, overrides=None, corpus=None, run_opts=None):
    """Resolve and check one run; returns a :class:`Run`. Builds, prepares and writes nothing.

    Arguments
    ---------
    hparams_file : str or Path
        The model YAML (``hparams/m4ser.yaml``).
    overrides : dict or str or None
        ``{key: value}`` (or SpeechBrain's YAML text of ``--key=value`` arguments).
    corpus : m4ser_lobes.corpora.Corpus
        Default: IEMOCAP.
    run_opts : dict or None
        SpeechBrain run options (``--device=cpu`` ...).

    Raises
    ------
    m4ser_lobes.experiment.settings.ConfigError
        An unknown key, a bad value or combination (one line).
    """
    from speechbrain.utils.run_opts import RunOptions

    if corpus is None:
        from m4ser_lobes.corpora.iemocap import IEMOCAP as corpus
    if not isinstance(run_opts, RunOptions):
        run_opts = RunOptions.from_dictionary(dict(run_opts or {}))
    overrides = overrides_dict(overrides)
    check_known_keys(hparams_file, corpus, overrides)
    values = cfg.load_values(hparams_file, merged_overrides(corpus.data_file, overrides))
    values = cfg.effective_values(values, run_opts)
    cfg.check_values(values, (cfg.ModelSettings, corpus.settings), source=str(hparams_file))
    cfg.check_combinations(values)
    settings = cfg.fingerprint(values, cfg.ModelSettings, corpus.settings)
    return Run(str(hparams_file), corpus, overrides, run_opts, values, settings)


# ------------------------------------------------------------------------------ identity
def manifest_digest(manifests):
    """Digest of the manifests' content (ids, labels, texts, durations; not the audio paths).

    The same corpus moved to another folder keeps its digest; another corpus, another label or
    another transcript changes it.
    """
    content = {}
    for split, path in sorted(manifests.items()):
        with open(path, encoding="utf-8") as fin:
            entries = json.load(fin)
        content[split] = {utt: {k: v for k, v in entry.items() if k != "wav"}
                          for utt, entry in sorted(entries.items())}
    return ident.digest(content, length=16)


def holds_run(folder):
    """Whether ``folder`` holds training work: a checkpoint or test results."""
    folder = Path(folder)
    return (folder / "test_metrics.json").is_file() or any((folder / "save").glob("CKPT+*"))


def run_identity(run, manifests):
    """The run's identity: its settings and the digest of its data (and where it starts from)."""
    return {**run.settings, "data": manifest_digest(manifests),
            "init_from": run.values.get("init_from")}


def recorded_conflict(run):
    """What differs between ``run``'s settings and those of the work recorded in its folder.

    A pre-check for callers that plan many runs (cross-validation, studies, grids) before any of
    them prepares data: the data part of the identity is compared later, by :func:`train`.

    Returns
    -------
    str or None
        None when the folder holds no work, or work with the same settings.
    """
    record = ident.read(run.output_folder)
    if not holds_run(run.output_folder):
        return None
    if record is None:
        return f"{run.output_folder} holds work whose settings were not recorded"
    changes = [c for c in ident.differences(_recorded_settings(record), ident.canonical(run.settings))
               if c.split(":", 1)[0] not in CONTINUABLE]
    if not changes:
        return None
    return f"{run.output_folder} holds work with other settings (" + "; ".join(changes) + ")"


def _recorded_settings(record):
    """The settings part of a recorded run identity (without its data and start)."""
    return {k: v for k, v in record["identity"].items() if k not in ("data", "init_from")}


def is_finished(run):
    """Whether ``run``'s folder holds its test results, made with exactly its settings
    (``number_of_epochs`` included: a larger one continues the run)."""
    if not (run.output_folder / "test_metrics.json").is_file():
        return False
    record = ident.read(run.output_folder)
    return record is not None and _recorded_settings(record) == ident.canonical(run.settings)


def refusal(conflict):
    """The one-line refusal of a conflicting rerun, with both ways to proceed."""
    return cfg.ConfigError(
        f"{conflict}: resuming would re-test and report that run. Start a separate run with a "
        "new --experiment_name=<name>, or replace this one with --overwrite=True (the old "
        "folder is moved aside, not deleted)")


def claim_folder(run, manifests):
    """Claim the output folder for ``run`` (see :func:`m4ser_lobes.utils.identity.claim`)."""
    try:
        claimed = ident.claim(run.output_folder, run_identity(run, manifests),
                              holds_work=holds_run, continuable=CONTINUABLE,
                              overwrite=run.values["overwrite"])
    except ident.IdentityConflict as error:
        raise refusal(error) from None
    if claimed.status == "continued":
        logger.info("continuing the run in %s (%s)", run.output_folder, "; ".join(claimed.changes))
    return claimed


# ------------------------------------------------------------------------------ helpers
def choose_threads(values, device="cpu", environ=None, cores=None):
    """torch's intra-op thread count for a run, and why: ``(threads, reason)``.

    ``cpu_threads`` when set, else ``OMP_NUM_THREADS`` when set, else on a CPU
    ``max(1, cores // (1 + num_workers))`` (each data-loader worker computes on one thread of
    its own); elsewhere None: torch's default.

    Example
    -------
    >>> choose_threads({"cpu_threads": None, "num_workers": 2}, environ={}, cores=2)
    (1, 'automatic: 2 cores // (1 + 2 data-loader workers)')
    >>> choose_threads({"cpu_threads": None, "num_workers": 2}, environ={"OMP_NUM_THREADS": "3"})
    (3, 'OMP_NUM_THREADS=3')
    >>> choose_threads({"cpu_threads": 4}, "cuda:0", environ={"OMP_NUM_THREADS": "1"})
    (4, 'cpu_threads=4')
    >>> choose_threads({"cpu_threads": None, "num_workers": 2}, "cuda:0", environ={})
    (None, "torch's default on cuda:0")
    """
    environ = os.environ if environ is None else environ
    if values.get("cpu_threads") is not None:
        return values["cpu_threads"], f"cpu_threads={values['cpu_threads']}"
    omp = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) > 0:
        return int(omp), f"OMP_NUM_THREADS={omp}"
    if not str(device).startswith("cpu"):
        return None, f"torch's default on {device}"
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = values.get("num_workers") or 0
    return (max(1, (cores or 1) // (1 + workers)),
            f"automatic: {cores} cores // (1 + {workers} data-loader workers)")


def use_threads(values, device=None):
    """Set torch's intra-op threads by :func:`choose_threads`; returns the line that logs it."""
    import torch
    from speechbrain.utils.distributed import infer_device

    device = device or infer_device()
    threads, reason = choose_threads(values, device)
    if threads is not None:
        torch.set_num_threads(threads)
    return f"CPU threads: {torch.get_num_threads()} ({reason}; --cpu_threads=<n> sets them)"


def manifests_of(values):
    """Split name -> manifest path."""
    return {split: values[f"{split}_annotation"] for split in ("train", "valid", "test")}


def tokenizer_of(hparams):
    """The text encoder's tokenizer; a speech-only run loads the tokenizer alone (no weights)."""
    if hparams["text_encoder"] is not None:
        return hparams["text_encoder"].tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hparams["text_encoder_source"],
                                         cache_dir=hparams["pretrained_cache"])


def run_protocol(run):
    """How ``run``'s tested checkpoint is chosen and its batches drawn (:func:`settings.protocol
    <m4ser_lobes.experiment.settings.protocol>`); a study's own validation manifest
    (``valid_annotation`` given by the caller) is said as such."""
    ran = cfg.protocol(run.values)
    if "valid_annotation" in run.overrides:
        ran.update(validation="valid_annotation", valid_ratio=None, optimistic=False)
    return ran


def configuration_of(run, claimed, manifests):
    """``configuration.json``: which parts of M4SER run, the corpus, the identity, and how the
    tested checkpoint is chosen and the batches drawn (``selection_metric``, ``validation``,
    ``valid_ratio``, ``seed``, ``batching``, ``optimistic``: :func:`run_protocol`), all in its
    ``summary`` line too."""
    from m4ser_lobes.text.provenance import asr_of_run  # the ASR behind the text (warns)

    configuration = cfg.describe(run.values, run_protocol(run))
    configuration.update(  # the same for every fold of one experiment (the report checks it)
        corpus=run.corpus.name,
        settings_digest=ident.digest(run.settings),
        asr=asr_of_run(run.values, manifests["train"], run.corpus),
    )
    return configuration


def write_configuration(run, claimed, manifests):
    """Log the run's configuration and write ``configuration.json`` (the main process only:
    its ASR warnings are said once, not once per DDP rank)."""
    configuration = configuration_of(run, claimed, manifests)
    logger.info("M4SER on %s: %s (settings %s, data %s, %s run)", run.corpus.name,
                configuration["summary"], configuration["settings_digest"],
                manifest_digest(manifests), claimed.status)
    atomic_write_json(run.output_folder / CONFIGURATION_FILE, configuration)


@contextlib.contextmanager
def restore_root_logging():
    """Run a training inside this process: the root-logger handlers (and level) are restored
    afterwards, removing those SpeechBrain installs per run (``log.txt`` of its output folder).

    Example
    -------
    >>> before = logging.getLogger().handlers[:]
    >>> with restore_root_logging():
    ...     logging.getLogger().addHandler(logging.NullHandler())
    >>> logging.getLogger().handlers == before
    True
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


# ------------------------------------------------------------------------------ train
def _prepare_and_check(run):
    """Prepare the manifests (main process) and check every split before any weights load.

    Runs that share ``prepare_root`` (a grid's, a job array's) take turns: the first prepares
    and checks, the others wait for it and then find the work done.
    """
    from m4ser_lobes.data.checks import check_splits
    from m4ser_lobes.utils.runlock import hold

    values = run.values
    with hold(values["prepare_root"], wait=True, lock_file=".prepare.lock"):
        if not values["skip_prep"]:
            logger.info("manifests: %s", values["prepare_folder"])
            run.corpus.prepare(**run.corpus.prepare_kwargs(values))
        manifests = manifests_of(values)
        check_splits(manifests, Path(values["prepare_root"]) / "audio_checks")
    return manifests


def load_objects(run):
    """The YAML of ``run`` built by HyperPyYAML (encoders load their weights here)."""
    from hyperpyyaml import load_hyperpyyaml

    with open(run.hparams_file, encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, run.yaml_overrides, overrides_must_match=False)


def train(run):
    """Carry out ``run``: lock, prepare, check, claim, build, fit, test; returns the Brain."""
    import speechbrain as sb

    from m4ser_lobes.utils.runlock import hold

    sb.utils.distributed.ddp_init_group(run.run_opts)
    threads = use_threads(run.values, run.run_opts["device"])  # logged once the log file exists
    main = sb.utils.distributed.if_main_process()
    with contextlib.ExitStack() as stack:
        if main:
            stack.enter_context(hold(run.output_folder))
            manifests = _prepare_and_check(run)
            claimed = claim_folder(run, manifests)
            if claimed.status == "replaced":  # the old folder (and its lock) moved aside
                stack.enter_context(hold(run.output_folder))
        sb.utils.distributed.ddp_barrier()
        if not main:
            manifests = manifests_of(run.values)
            claimed = ident.Claim("same")
        return _fit_and_test(run, load_objects(run), manifests, claimed, threads)


def _fit_and_test(run, hparams, manifests, claimed, threads=None):
    import speechbrain as sb

    from m4ser_lobes.brain import M4SERBrain
    from m4ser_lobes.data import batching
    from m4ser_lobes.data.dataio import dataio_prep

    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=run.hparams_file,
                                   overrides=run.yaml_overrides)
    if threads:
        logger.info(threads)
    sb.utils.distributed.run_on_main(write_configuration, args=[run, claimed, manifests])
    tokenizer = tokenizer_of(hparams)
    sb.utils.distributed.run_on_main(write_label_statistics, args=[hparams, tokenizer])
    model = hparams["model"]
    use_aed, use_aec = model.aed_head is not None, model.aec_decoder is not None
    datasets, label_encoder = dataio_prep(
        manifests, tokenizer,
        label_encoder_path=os.path.join(hparams["save_folder"], "label_encoder.txt"),
        text_source=hparams["text_source"],
        # Table IV C(1): without the detector, AEC corrects whole utterances from scratch.
        correction_mode="selective" if use_aed else "full",
        max_audio_seconds=hparams["max_audio_seconds"],
        max_tokens=hparams["max_tokens"],
        with_corrections=use_aed or use_aec,
        keep_punctuation=hparams["keep_punctuation"],
    )
    label_encoder.expect_len(hparams["num_emotions"])
    hparams["label_encoder"] = label_encoder
    hparams["emotion_class_weights"] = class_weights_of(hparams, label_encoder)
    ran = run_protocol(run)  # how the tested checkpoint is chosen: in test_metrics.json
    hparams["run_protocol"] = {**ran, "protocol_summary": cfg.protocol_text(ran)}
    hparams["paper_result"] = paper_result_of(run)  # beside ours in test_metrics.json
    brain = M4SERBrain(modules=hparams["modules"], hparams=hparams, run_opts=run.run_opts,
                       checkpointer=hparams["checkpointer"])
    train_kwargs = batching.train_loader_kwargs(
        datasets["train"], hparams["batch_size"], bucketing=hparams["bucketing"],
        max_batch_seconds=hparams["max_batch_seconds"], num_buckets=hparams["num_buckets"],
        seed=hparams["seed"], num_workers=hparams["num_workers"],
        max_audio_seconds=hparams["max_audio_seconds"])
    # The Brain calls set_epoch only on its train_sampler (one order per seed and epoch, exact
    # intra-epoch resume); under DDP make_dataloader replaces it with its wrapper.
    brain.train_sampler = batching.epoch_sampler(train_kwargs)

    def eval_kwargs(split):  # longest first always: each utterance is exact alone vs batched
        return batching.eval_loader_kwargs(
            datasets[split], hparams["test_dataloader_options"]["batch_size"],
            sort=True, num_workers=hparams["num_workers"])

    if run.values.get("init_from"):  # a fine-tuning start is a selection candidate too
        from m4ser_lobes.experiment.finetune import score_start

        score_start(brain, datasets["valid"], eval_kwargs("valid"))
    brain.fit(brain.hparams.epoch_counter, datasets["train"], datasets["valid"],
              train_loader_kwargs=train_kwargs, valid_loader_kwargs=eval_kwargs("valid"))
    brain.evaluate(datasets["test"], max_key=brain.selection_metric,
                   test_loader_kwargs=eval_kwargs("test"))
    metrics_file = run.output_folder / "test_metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        logger.info("%s test (%s): %s%s", run.corpus.name, cfg.protocol_text(ran), "  ".join(
            f"{k} {metrics[k]:.2f}" for k in run.corpus.metrics if k in metrics),
            paper_text(metrics.get("paper")))
    return brain


def paper_result_of(run):
    """What the paper reports for ``run``'s row on its corpus
    (:func:`m4ser_lobes.experiment.ablations.paper_result`); None for a run on its caller's own
    manifests (a study: not the paper's protocol) or a switch combination the paper has no row for."""
    from m4ser_lobes.experiment.ablations import paper_result

    if any(f"{split}_annotation" in run.overrides for split in ("train", "valid", "test")):
        return None
    return paper_result(run.values, run.corpus.name)


def paper_text(paper):
    """``; the paper (<source>, <row>): WA 79.2  UA 80.1`` for the final log line ('' if None).

    Example
    -------
    >>> paper_text({"row": "M4SER (full)", "source": "Tables III and IV", "ACC": 66.5, "W-F1": 66.0})
    '; the paper (Tables III and IV, M4SER (full)): ACC 66.5  W-F1 66.0'
    """
    from m4ser_lobes.experiment.ablations import paper_source

    if not paper:
        return ""
    figures = "  ".join(f"{k} {v:.1f}" for k, v in paper.items() if k not in ("row", "source"))
    return f"; the paper ({paper_source(paper)}): {figures}"


# ------------------------------------------------------------------------------ command line
def user_errors():
    """The exceptions that explain themselves: printed as one line, no traceback."""
    from m4ser_lobes.checkpoints import CheckpointDiskFull
    from m4ser_lobes.data.checks import DataCheckError
    from m4ser_lobes.data.prep import PrepError
    from m4ser_lobes.utils.runlock import RunLocked

    return (cfg.ConfigError, ident.IdentityConflict, PrepError, DataCheckError, RunLocked,
            CheckpointDiskFull)


@contextlib.contextmanager
def one_line_errors():
    """Turn a user error into ``error: <message>`` and exit status 1 (``M4SER_TRACEBACK=1`` shows
    the traceback instead)."""
    try:
        yield
    except user_errors() as error:
        if os.environ.get("M4SER_TRACEBACK") == "1":
            raise
        sys.exit(f"error: {error}  (M4SER_TRACEBACK=1 shows the traceback)")


def run_argv(argv, corpus=None):
    """``HPARAMS [--key=value ...]`` parsed once, by SpeechBrain -> :func:`plan_run` -> :func:`train`."""
    import speechbrain as sb

    hparams_file, run_opts, overrides = sb.parse_arguments(list(argv))
    return train(plan_run(hparams_file, overrides, corpus, run_opts))


def command_line(corpus, argv=None):
    """A recipe script's body: :func:`run_argv` of ``sys.argv``, user errors as one line."""
    with one_line_errors():
        return run_argv(sys.argv[1:] if argv is None else argv, corpus)
