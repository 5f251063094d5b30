"""The recipe body shared by every corpus: check, prepare, build, train, select, test.

A corpus recipe (``recipes/IEMOCAP/train.py``, ``recipes/MELD/train.py``) is a docstring, a
:class:`Corpus` and one call::

    brain = run_recipe(argv, corpus)  # argv: "hparams/m4ser.yaml --key=value ..."

run from the shell by :func:`command_line` (a bad value exits with one line, no traceback).

:func:`run_recipe` does, in this order (nothing is built or prepared before step 2 passed):

1. read the YAML values with the corpus overrides (:attr:`Corpus.overrides_file`, a YAML of
   ``key: value`` lines applied *under* the command line) and the command-line overrides;
2. check every value (:data:`m4ser_lobes.experiment.config.SCHEMA` plus :attr:`Corpus.rules`)
   and compare the run's settings with those recorded in ``output_folder``: a rerun with other
   settings is refused (``--overwrite=True`` moves the old run aside), the same settings resume;
3. create the experiment folder, record ``configuration.json`` and ``fingerprint.json``;
4. prepare the manifests on the main process (``Corpus.prepare(**Corpus.prepare_kwargs(hparams))``,
   skipped with ``--skip_prep=True``);
5. build the tokenizer, the data pipelines (:func:`m4ser_lobes.data.dataio.dataio_prep`), the
   optional class weights of L_ER (``class_weights: balanced``, :func:`balanced_class_weights`),
   the :class:`m4ser_lobes.brain.M4SERBrain`, the length-bucketed loaders;
6. ``fit`` on train/valid, keeping the checkpoint with the best ``selection_metric`` (YAML:
   ``UA`` for IEMOCAP, ``W-F1`` for MELD), and ``evaluate`` it on test (``test_metrics.json``,
   ``predictions.csv``, ``confusion_matrix.png`` in ``output_folder``).

Other studies reuse the same entry with their own manifests, e.g.
``run_recipe([yaml, "--skip_prep=True", "--train_annotation=a.json", "--valid_annotation=b.json",
"--test_annotation=c.json", "--experiment_name=x"], corpus)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, NamedTuple

from m4ser_lobes.experiment import config
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)


class Corpus(NamedTuple):
    """What a corpus recipe adds to the shared body.

    Arguments
    ---------
    name : str
        Shown in the log (``"IEMOCAP"``).
    prepare : callable
        The data preparation, called on the main process with ``prepare_kwargs(hparams)``.
    prepare_kwargs : callable
        ``hparams -> dict`` of keyword arguments for ``prepare``.
    rules : dict
        The corpus keys of the YAML -> :class:`m4ser_lobes.experiment.config.Rule`.
    metrics : tuple of str
        Test metrics logged at the end (keys of ``test_metrics.json``).
    overrides_file : str or Path or None
        A YAML of overrides applied to the hparams file below the command line (MELD's column
        of Table I); None for a corpus described by the hparams file itself.
    """

    name: str
    prepare: Callable
    prepare_kwargs: Callable
    rules: dict
    metrics: tuple = ("WA", "UA", "W-F1")
    overrides_file: str | Path | None = None

    @property
    def all_rules(self):
        """Every rule a run of this corpus checks: ``config.SCHEMA`` and :attr:`rules`."""
        return {**config.SCHEMA, **self.rules}


def prepare_folders(hparams):
    """The arguments every corpus's ``prepare`` takes: ``data_folder``, ``save_folder``, ``hypotheses``.

    Example
    -------
    >>> prepare_folders({"data_folder": "/d", "prepare_folder": "/p", "hypotheses_file": None})
    {'data_folder': '/d', 'save_folder': '/p', 'hypotheses': None}
    """
    return {
        "data_folder": hparams["data_folder"],
        "save_folder": hparams["prepare_folder"],
        "hypotheses": hparams["hypotheses_file"],
    }


def command_line(main, errors=(config.ConfigError,)):
    """Run a recipe script's ``main(sys.argv[1:])``; ``errors`` exit with their one-line message.

    Those errors explain themselves (a bad value, a refused rerun): the script prints
    ``error: <message>`` and exits with status 1 instead of a traceback.
    """
    try:
        return main(sys.argv[1:])
    except errors as error:
        sys.exit(f"error: {error}")


@contextlib.contextmanager
def restore_root_logging():
    """Run ``train.main`` inside this process: the root-logger handlers (and level) are restored
    afterwards, removing those SpeechBrain installs per run (``log.txt`` of its output folder).

    Example
    -------
    >>> import logging
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


def merge_overrides(corpus_overrides, overrides):
    """One YAML string: ``corpus_overrides`` (YAML text) updated by ``overrides`` (YAML text).

    A key of ``overrides`` replaces the whole value of the same key (``--key=value`` always
    wins); tags (``!ref``, ``!apply:``) are kept for HyperPyYAML.

    Example
    -------
    >>> print(merge_overrides("lr: 0.1\\nout: !ref <root>/x\\n", "lr: 0.2"), end="")
    lr: 0.2
    out: !ref <root>/x
    """
    import io

    import ruamel.yaml

    yaml = ruamel.yaml.YAML()
    merged = yaml.load(corpus_overrides or "") or {}
    extra = yaml.load(overrides or "") or {}
    for key, value in extra.items():
        merged[key] = value
    if not merged:
        return ""
    stream = io.StringIO()
    yaml.dump(merged, stream)
    return stream.getvalue()


def recipe_overrides(hparams_file, overrides, corpus):
    """The overrides a run applies to ``hparams_file``: the corpus file's, then the command line's.

    Raises :class:`m4ser_lobes.experiment.config.ConfigError` when ``hparams_file`` is the corpus
    overrides file itself (it is not a complete configuration), or when a command-line key is in
    neither file (a typo that would otherwise add an unused key).
    """
    if corpus.overrides_file is None:
        return overrides
    import ruamel.yaml

    path = Path(corpus.overrides_file)
    if Path(hparams_file).resolve() == path.resolve():
        raise config.ConfigError(
            f"{hparams_file} holds only the {corpus.name} overrides, which the recipe applies "
            f"itself: pass the model YAML instead, e.g. hparams/m4ser.yaml"
        )
    corpus_text = path.read_text(encoding="utf-8")
    yaml = ruamel.yaml.YAML()
    with open(hparams_file, encoding="utf-8") as fin:
        known = set(yaml.load(fin) or {}) | set(yaml.load(corpus_text) or {})
    unknown = sorted(set(yaml.load(overrides or "") or {}) - known)
    if unknown:
        raise config.ConfigError(
            f"--{unknown[0]} is not a key of {hparams_file} or {path}: check its spelling "
            f"(unknown: {', '.join(unknown)})"
        )
    return merge_overrides(corpus_text, overrides)


def check_configuration(hparams_file, overrides, run_opts=None, rules=config.SCHEMA):
    """Read and validate the YAML values (nothing built); returns ``(values, settings)``.

    Raises :class:`m4ser_lobes.experiment.config.ConfigError` (one line) on a bad value or combination.
    """
    values = config.load_values(hparams_file, overrides)
    values = config.validate(config.effective_values(values, run_opts), rules)
    return values, config.run_settings(values, rules)


def replace_run(output_folder, conflict):
    """``--overwrite=True``: move the old run aside (a hidden sibling folder), never delete it."""
    folder = Path(output_folder)
    target = folder.with_name(f".{folder.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(folder, target)
    logger.warning("overwrite=True: %s; moved it to %s (delete it when no longer needed)",
                   conflict, target)


def record_run(output_folder, configuration, settings):
    """``configuration.json`` and ``fingerprint.json`` in the output folder (atomic writes)."""
    atomic_write_json(Path(output_folder) / config.CONFIGURATION_FILE, configuration)
    config.record_fingerprint(output_folder, settings)


def tokenizer_of(hparams):
    """The text encoder's tokenizer; a speech-only run loads the tokenizer alone (no weights):
    the data pipeline still turns the text into ``input_ids``, which the model ignores."""
    if hparams["text_encoder"] is not None:
        return hparams["text_encoder"].tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hparams["text_encoder_source"],
                                         cache_dir=hparams["pretrained_cache"])


def manifests_of(hparams):
    """Split name -> manifest path."""
    return {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }


def write_label_statistics(hparams, tokenizer):
    """Share of KEEP/DELETE/CHANGE tokens, truncated AEC targets and WER of the training
    manifest, in ``label_statistics.json`` next to it (once)."""
    from m4ser_lobes.text.statistics import manifest_label_statistics

    out = os.path.join(os.path.dirname(os.path.abspath(hparams["train_annotation"])),
                       "label_statistics.json")
    if hparams["text_source"] == "hypothesis" and not os.path.exists(out):
        manifest_label_statistics(
            [hparams["train_annotation"]],
            tokenizer,
            max_len=hparams["aec_max_len"],
            output_path=out,
        )


def label_counts(manifest, field="emo"):
    """Label -> number of utterances in a SpeechBrain JSON manifest.

    Example
    -------
    >>> import json
    >>> path = getfixture("tmp_path") / "train.json"
    >>> _ = path.write_text(json.dumps({"a": {"emo": "joy"}, "b": {"emo": "joy"}, "c": {"emo": "fear"}}))
    >>> label_counts(path)
    {'fear': 1, 'joy': 2}
    """
    with open(manifest, encoding="utf-8") as fin:
        counts = Counter(entry[field] for entry in json.load(fin).values())
    return dict(sorted(counts.items()))


def balanced_class_weights(counts):
    """Inverse-frequency class weights ``N / (C * n_c)`` (scikit-learn's ``"balanced"``).

    A class seen ``n_c`` times in the N training utterances of C classes weighs ``N / (C n_c)``:
    every class contributes the same total weight, and a balanced corpus gets all ones. A class
    absent from training (``n_c = 0``) weighs as if seen once (its weight is never used by the
    training loss, and it stays finite).

    Arguments
    ---------
    counts : sequence of int
        Training utterances per class, in class-index order.

    Returns
    -------
    list of float

    Example
    -------
    >>> balanced_class_weights([6, 2, 2, 2])
    [0.5, 1.5, 1.5, 1.5]
    >>> balanced_class_weights([3, 3])
    [1.0, 1.0]
    """
    total, num_classes = sum(counts), len(counts)
    return [total / (num_classes * max(n, 1)) for n in counts]


def class_weights_of(hparams, label_encoder):
    """The ``[C]`` L_ER weights for ``class_weights`` (YAML), or None for the plain loss.

    ``balanced``: :func:`balanced_class_weights` of the training manifest's label counts, in the
    label encoder's index order.
    """
    import torch

    mode = hparams.get("class_weights")
    if mode is None:
        return None
    counts = label_counts(hparams["train_annotation"])
    names = [label_encoder.decode_ndim(i) for i in range(len(label_encoder))]
    weights = balanced_class_weights([counts.get(name, 0) for name in names])
    absent = [name for name in names if counts.get(name, 0) == 0]
    if absent:
        logger.warning("class_weights=balanced: %s absent from %s", ", ".join(absent),
                       hparams["train_annotation"])
    logger.info("L_ER class weights (balanced, from %s): %s", hparams["train_annotation"],
                ", ".join(f"{n} {w:.3f}" for n, w in zip(names, weights)))
    return torch.tensor(weights, dtype=torch.float32)


def run_recipe(argv, corpus):
    """Check, prepare, train, select on valid and test one run; returns the ``M4SERBrain``.

    Arguments
    ---------
    argv : list of str
        ``[hparams_file, --key=value ...]`` as on the command line (SpeechBrain run options such
        as ``--device=cpu`` included).
    corpus : Corpus
        The corpus description.

    Raises
    ------
    m4ser_lobes.experiment.config.ConfigError
        A bad value or combination, or a rerun with other settings (one line; nothing built).
    """
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml

    from m4ser_lobes.brain import M4SERBrain
    from m4ser_lobes.data import batching
    from m4ser_lobes.data.dataio import dataio_prep

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    overrides = recipe_overrides(hparams_file, overrides, corpus)
    rules = corpus.all_rules
    # Before anything is built (encoders load weights) or prepared: values, then the folder.
    values, settings = check_configuration(hparams_file, overrides, run_opts, rules)
    conflict = config.rerun_conflict(values["output_folder"], settings)
    if conflict is not None and not values["overwrite"]:
        raise config.rerun_error(conflict)
    sb.utils.distributed.ddp_init_group(run_opts)
    if conflict is not None:
        sb.utils.distributed.run_on_main(replace_run, args=[values["output_folder"], conflict])
    with open(hparams_file, encoding="utf-8") as fin:
        # The corpus overrides add keys (recipe_overrides checked the command line's).
        hparams = load_hyperpyyaml(fin, overrides,
                                   overrides_must_match=corpus.overrides_file is None)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    configuration = config.describe(values, settings)
    configuration["corpus"] = corpus.name
    logger.info("M4SER on %s: %s (settings %s)", corpus.name, configuration["summary"],
                configuration["settings_digest"])
    sb.utils.distributed.run_on_main(
        record_run, args=[hparams["output_folder"], configuration, settings])
    if not hparams["skip_prep"]:
        logger.info("manifests: %s", hparams["prepare_folder"])
        sb.utils.distributed.run_on_main(corpus.prepare, kwargs=corpus.prepare_kwargs(hparams))
    tokenizer = tokenizer_of(hparams)
    sb.utils.distributed.run_on_main(write_label_statistics, args=[hparams, tokenizer])
    datasets, label_encoder = dataio_prep(
        manifests_of(hparams),
        tokenizer,
        label_encoder_path=os.path.join(hparams["save_folder"], "label_encoder.txt"),
        text_source=hparams["text_source"],
        # Table IV C(1): without the detector, AEC corrects whole utterances from scratch.
        correction_mode="selective" if hparams["use_aed"] else "full",
        max_audio_seconds=hparams["max_audio_seconds"],
        max_tokens=hparams["max_tokens"],
        with_corrections=hparams["use_aed"] or hparams["use_aec"],
    )
    label_encoder.expect_len(hparams["num_emotions"])
    hparams["label_encoder"] = label_encoder
    hparams["emotion_class_weights"] = class_weights_of(hparams, label_encoder)

    brain = M4SERBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    train_loader_kwargs = batching.train_loader_kwargs(
        datasets["train"],
        hparams["batch_size"],
        bucketing=hparams["bucketing"],
        max_batch_seconds=hparams["max_batch_seconds"],
        num_buckets=hparams["num_buckets"],
        seed=hparams["seed"],
        num_workers=hparams["num_workers"],
        max_audio_seconds=hparams["max_audio_seconds"],
    )
    # The Brain calls set_epoch only on its train_sampler (one order per seed and epoch, exact
    # intra-epoch resume); under DDP make_dataloader replaces it with its wrapper.
    brain.train_sampler = train_loader_kwargs.get("batch_sampler")

    def eval_loader_kwargs(split):
        return batching.eval_loader_kwargs(
            datasets[split],
            hparams["test_dataloader_options"]["batch_size"],
            sort=hparams["bucketing"],
            num_workers=hparams["num_workers"],
        )

    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_loader_kwargs,
        valid_loader_kwargs=eval_loader_kwargs("valid"),
    )
    brain.evaluate(datasets["test"], max_key=brain.selection_metric,
                   test_loader_kwargs=eval_loader_kwargs("test"))
    metrics_file = Path(hparams["output_folder"]) / "test_metrics.json"
    if metrics_file.is_file():
        with open(metrics_file, encoding="utf-8") as fin:
            metrics = json.load(fin)
        logger.info("%s test (checkpoint of best valid %s): %s", corpus.name,
                    brain.selection_metric,
                    "  ".join(f"{k} {metrics[k]:.2f}" for k in corpus.metrics if k in metrics))
    return brain
