"""The configuration of a run: checked before anything is built, logged, and fingerprinted.

A recipe reads the plain values of its YAML with the command-line overrides applied, exactly as
HyperPyYAML will see them but without building any object (:func:`load_values`), checks them
against a declarative table (:data:`SCHEMA`, key -> rule, plus the corpus rules a recipe adds)
and against the combinations the model cannot run (:func:`validate`), and only then builds the
objects with ``load_hyperpyyaml``. ``--use_gan=no`` on the command line is the YAML *string*
``'no'``, truthy in Python; here it is refused with one line that names the key, the value and
the allowed values.

:func:`run_settings` is the fingerprint of a run: every value that changes what a run trains or
reports (:attr:`Rule.results`), without bookkeeping such as output paths or ``num_workers``.
It is stored in the output folder (``fingerprint.json``); :func:`settings_differences` lists
what a rerun changed, so a rerun with other settings never resumes, re-tests and reports the old
run. :func:`describe` is the short, human description of which parts of M4SER a run uses
(``configuration.json``, the log, the cross-validation report). :func:`prepared_folder` names
the folder of data manifests after everything that shapes them, so two runs that split the data
differently never share (and overwrite) manifests.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

from m4ser_lobes.data.dataio import TEXT_SOURCES
from m4ser_lobes.fusion import MODALITIES
from m4ser_lobes.mir import HST_TEXT_SOURCES

PRECISIONS = ("fp32", "fp16", "bf16")
#: Values of ``class_weights``: null is the paper's plain L_ER; ``balanced`` weighs each class by
#: its inverse training frequency (``m4ser_lobes.experiment.recipe.balanced_class_weights``).
CLASS_WEIGHT_MODES = ("balanced",)
#: Values of ``selection_metric``: the validation metric whose best checkpoint is tested
#: (WA is MELD's ACC).
from m4ser_lobes.metrics import SELECTION_METRICS  # noqa: E402
#: SpeechBrain run options that, given on the command line, replace the YAML value of the same
#: name (``--precision=bf16`` is a run option, not an override).
RUN_OPTION_KEYS = ("precision", "grad_accumulation_factor", "max_grad_norm",
                   "ckpt_interval_minutes", "find_unused_parameters")
FINGERPRINT_FILE = "fingerprint.json"
CONFIGURATION_FILE = "configuration.json"


class ConfigError(ValueError):
    """A configuration value or combination that cannot run; the message is one line."""


# ------------------------------------------------------------------------------ rules
class Rule:
    """One key's rule: ``accepts(value)`` and the ``allowed`` values in words.

    Arguments
    ---------
    allowed : str
        The allowed values, as the error message shows them.
    accepts : callable
        value -> bool.
    results : bool
        Whether the value changes what a run trains or reports (part of the fingerprint).
    """

    def __init__(self, allowed, accepts, results=True):
        self.allowed = allowed
        self.accepts = accepts
        self.results = results

    def __repr__(self):
        return f"Rule({self.allowed!r}{'' if self.results else ', results=False'})"

    def bookkeeping(self):
        """The same rule, outside the fingerprint."""
        return Rule(self.allowed, self.accepts, results=False)

    def or_null(self):
        """The same rule, also accepting null."""
        accepts = self.accepts
        return Rule(f"{self.allowed}, or null", lambda v: v is None or accepts(v), self.results)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def flag():
    """A YAML boolean (``True``/``False``); the strings ``'no'``, ``'off'`` are refused.

    Example
    -------
    >>> flag().accepts(False), flag().accepts("no"), flag().accepts(0)
    (True, False, False)
    """
    return Rule("True or False", lambda v: isinstance(v, bool))


def one_of(*choices):
    """One of ``choices``.

    Example
    -------
    >>> one_of("both", "speech").accepts("audio")
    False
    """
    return Rule("one of " + ", ".join(map(str, choices)), lambda v: v in choices and
                not isinstance(v, bool))


def integer(low=None, high=None):
    """An integer in ``[low, high]`` (either bound optional).

    Example
    -------
    >>> integer(1, 5).accepts(5), integer(1, 5).accepts(6), integer(1).accepts(2.0)
    (True, False, False)
    >>> integer(1).allowed
    'an integer >= 1'
    """
    if high is None:
        allowed = "an integer" + ("" if low is None else f" >= {low}")
    else:
        allowed = f"an integer in {low}..{high}"
    return Rule(allowed, lambda v: _is_int(v) and (low is None or v >= low)
                and (high is None or v <= high))


def real(low=None, high=None, low_open=False, high_open=False):
    """A finite number within the bounds (``low_open``/``high_open``: bound excluded).

    Example
    -------
    >>> real(0, 1, high_open=True).accepts(1.0), real(0, 1, high_open=True).allowed
    (False, 'a number in [0, 1)')
    >>> real(0, low_open=True).accepts(float("nan")), real(0, low_open=True).allowed
    (False, 'a finite number > 0')
    """
    if low is not None and high is not None:
        allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a finite number {'>' if low_open else '>='} {low}"
    else:
        allowed = "a finite number"

    def accepts(v):
        if not _is_real(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    return Rule(allowed, accepts)


def text():
    """A non-empty string (a name, a path, a hub id)."""
    return Rule("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")


#: Every corpus-agnostic key of ``hparams/m4ser.yaml`` -> its rule. The recipe adds its corpus
#: rules (``recipes/IEMOCAP/iemocap_prepare.py: HPARAM_RULES``); keys built from these values
#: (objects, loader options) are listed in :data:`DERIVED_KEYS`.
SCHEMA = {
    # data and protocol
    "seed": integer(0),
    "experiment_name": text().bookkeeping(),
    "data_folder": text().bookkeeping(),
    "hypotheses_file": text().or_null(),  # fingerprinted by content, see run_settings
    "results_folder": text().bookkeeping(),
    "output_folder": text().bookkeeping(),
    "save_folder": text().bookkeeping(),
    "skip_prep": flag().bookkeeping(),
    "overwrite": flag().bookkeeping(),
    "text_source": one_of(*TEXT_SOURCES),
    "max_audio_seconds": real(0, low_open=True).or_null(),
    "max_tokens": integer(3).or_null(),  # [CLS], at least one token, [SEP]
    # encoders
    "speech_encoder_source": text(),
    "text_encoder_source": text(),
    "pretrained_cache": text().bookkeeping(),
    "freeze_speech_encoder": flag(),
    "freeze_text_encoder": flag(),
    # sizes
    "d_model": integer(1),
    "nhead": integer(1),
    "cme_layers": integer(1),
    "cme_ffn": integer(1).or_null(),
    "dropout": real(0, 1, high_open=True),
    "er_dropout": real(0, 1, high_open=True),
    "hst_text_source": one_of(*HST_TEXT_SOURCES),
    "num_emotions": integer(2),
    "discriminator_hidden": integer(1),
    "aec_layers": integer(1),
    "aec_ffn": integer(1),
    "aec_max_len": integer(1),
    # Table IV switches
    "modalities": one_of(*MODALITIES),
    "use_msr": flag(),
    "use_mir": flag(),
    "use_aed": flag(),
    "use_aec": flag(),
    "use_gan": flag(),
    "use_lcl": flag(),
    # loss weights (Eq. 22)
    "alpha": real(0),
    "beta": real(0),
    "gamma": real(0),
    "lam": real(0),
    "tau": real(0, low_open=True),
    "class_weights": one_of(*CLASS_WEIGHT_MODES).or_null(),
    # training
    "number_of_epochs": integer(1),
    "batch_size": integer(1),
    "lr": real(0, low_open=True),
    "lr_encoders": real(0, low_open=True),
    "lr_head": real(0, low_open=True),
    "lr_discriminator": real(0, low_open=True),
    "max_grad_norm": real(0),
    "precision": one_of(*PRECISIONS),
    "grad_accumulation_factor": integer(1),
    "ckpt_interval_minutes": real(0).bookkeeping(),
    "find_unused_parameters": flag().bookkeeping(),
    "num_workers": integer(0).bookkeeping(),
    "bucketing": flag(),
    "max_batch_seconds": real(0, low_open=True).or_null(),
    "num_buckets": integer(1),
    "selection_metric": one_of(*SELECTION_METRICS),
}

#: Keys of ``hparams/m4ser.yaml`` built from the values above (objects, paths, loader options):
#: they have no rule of their own and are not fingerprinted.
DERIVED_KEYS = frozenset({
    "prepare_root", "prepare_folder", "train_annotation", "valid_annotation", "test_annotation",
    "dataloader_options", "test_dataloader_options", "speech_encoder", "text_encoder", "fusion",
    "emotion_head", "aed_head", "aec_decoder", "model", "discriminator", "modules",
    "opt_class_encoders", "opt_class_head", "opt_class_discriminator", "epoch_counter",
    "train_logger", "checkpointer",
})


# ------------------------------------------------------------------------------ reading
def load_values(hparams_file, overrides=None):
    """Plain values of a HyperPyYAML file with ``overrides`` applied; builds nothing.

    References are resolved by HyperPyYAML and the result is read with the loader HyperPyYAML
    itself uses (YAML 1.2: ``no``/``off`` stay strings, ``1e-3`` is a number), so every value is
    what ``load_hyperpyyaml`` would hand to the objects. Objects (``!new:``, ``!apply:`` ...)
    read as None; keys starting with ``__`` are dropped, as HyperPyYAML does.

    Raises
    ------
    ConfigError
        A ``!PLACEHOLDER`` was left unset (the message names the ``--key=<value>`` to pass).

    Example
    -------
    >>> path = getfixture("tmp_path") / "h.yaml"
    >>> _ = path.write_text("use_gan: True\\nlr: 0.1\\nlr_head: !ref <lr>\\n"
    ...                     "model: !new:torch.nn.Linear [2, 2]\\n")
    >>> load_values(path, "use_gan: no\\nlr: 1e-3")
    {'use_gan': 'no', 'lr': 0.001, 'lr_head': 0.001, 'model': None}
    """
    from hyperpyyaml import resolve_references

    from m4ser_lobes.utils.fileio import load_hyperpyyaml_values

    with open(hparams_file, encoding="utf-8") as fin:
        try:
            resolved = resolve_references(fin, overrides).getvalue()
        except ValueError as error:
            unset = re.search(r"'(\w+)' is a !PLACEHOLDER", str(error))
            if unset is None:
                raise
            raise ConfigError(f"{hparams_file}: {unset.group(1)} has no value; pass it on the "
                              f"command line: --{unset.group(1)}=<value>") from error
    return load_hyperpyyaml_values(resolved)


# ------------------------------------------------------------------------------ checking
def check_values(values, rules):
    """Check every key that has a rule; raise :class:`ConfigError` on the first bad value.

    Example
    -------
    >>> check_values({"use_gan": True, "dropout": 0.1}, SCHEMA)
    >>> check_values({"use_gan": "no"}, SCHEMA)
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.config.ConfigError: use_gan='no' is not allowed: use_gan must be True or False (--use_gan=True or --use_gan=False)
    """
    for key, rule in rules.items():
        if key in values and not rule.accepts(values[key]):
            raise ConfigError(
                f"{key}={values[key]!r} is not allowed: {key} must be {rule.allowed}"
                + _fix(key, rule)
            )


def _fix(key, rule):
    if rule.allowed == "True or False":
        return f" (--{key}=True or --{key}=False)"
    return ""


def check_combinations(values):
    """Refuse the switch combinations the model cannot train (each message says what to change).

    Example
    -------
    >>> check_combinations({"modalities": "speech", "use_mir": True, "use_gan": True})
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.config.ConfigError: use_gan=True needs the modality-invariant representation H_inv, which exists only with modalities=both and use_mir=True (got modalities=speech, use_mir=True): add --use_gan=False
    """
    get = values.get
    modalities = get("modalities", "both")
    if get("use_gan") and not (modalities == "both" and get("use_mir", True)):
        raise ConfigError(
            "use_gan=True needs the modality-invariant representation H_inv, which exists only "
            f"with modalities=both and use_mir=True (got modalities={modalities}, "
            f"use_mir={get('use_mir')}): add --use_gan=False"
        )
    on = [k for k in ("use_aed", "use_aec") if get(k)]
    if modalities == "speech" and on:
        raise ConfigError(
            f"modalities=speech with {' and '.join(k + '=True' for k in on)}: AED and AEC train "
            "the text encoder, which a speech-only model never uses (and would have to load): "
            "add " + " ".join(f"--{k}=False" for k in on)
        )
    if _is_int(get("d_model")) and _is_int(get("nhead")) and get("d_model") % get("nhead"):
        raise ConfigError(
            f"d_model={get('d_model')} is not divisible by nhead={get('nhead')}: the attention "
            "heads split the width evenly; choose nhead among the divisors of d_model"
        )
    if get("text_source") == "hypothesis" and "hypotheses_file" in values and \
            get("hypotheses_file") is None:
        raise ConfigError(
            "text_source=hypothesis needs ASR hypotheses but hypotheses_file=null: pass "
            "--hypotheses_file=<cache written by python -m m4ser_lobes.text.asr>, or train on human "
            "transcripts with --text_source=transcript"
        )
    hypotheses = get("hypotheses_file")
    if hypotheses is not None and not get("skip_prep") and not Path(hypotheses).is_file():
        raise ConfigError(
            f"hypotheses_file={hypotheses} does not exist: create it with python -m "
            "m4ser_lobes.text.asr, fix the path, or pass --hypotheses_file=null --text_source=transcript"
        )


def validate(values, rules=SCHEMA):
    """Check the values against ``rules`` (key -> :class:`Rule`), then the combinations.

    Returns ``values``; raises :class:`ConfigError` with a one-line message.
    """
    check_values(values, rules)
    check_combinations(values)
    return values


def effective_values(values, run_opts=None):
    """``values`` with the SpeechBrain run options that replace YAML values (``--precision``...).

    Only options given on the command line count, as in ``sb.Brain``: SpeechBrain's
    ``RunOptions`` holds every default, and names the given ones in ``overridden_args``.

    Example
    -------
    >>> effective_values({"precision": "fp32", "lr": 0.1}, {"precision": "bf16", "device": "cpu"})
    {'precision': 'bf16', 'lr': 0.1}
    """
    if run_opts is None:
        return dict(values)
    given = getattr(run_opts, "overridden_args", None)
    if given is None:  # a plain dict holds only what was given
        given = set(run_opts)
    return {**values, **{k: run_opts[k] for k in RUN_OPTION_KEYS if k in given and k in values}}


# ------------------------------------------------------------------------------ identity
def file_digest(path):
    """SHA-1 of a file's content (None for None; ``'missing:<path>'`` when absent).

    Example
    -------
    >>> path = getfixture("tmp_path") / "a.json"
    >>> _ = path.write_text("{}")
    >>> file_digest(path), file_digest(None)
    ('bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f', None)
    """
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return f"missing:{path.resolve()}"
    sha1 = hashlib.sha1()
    with open(path, "rb") as fin:
        for block in iter(lambda: fin.read(1 << 20), b""):
            sha1.update(block)
    return sha1.hexdigest()


def digest(obj, length=12):
    """Short SHA-1 of the canonical JSON of ``obj`` (sorted keys).

    Example
    -------
    >>> digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})
    True
    """
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:length]


def prepared_folder(root, data_folder=None, hypotheses=None, **options):
    """``<root>/<key>``: the manifest folder for data prepared with these options.

    The key hashes every option that shapes the manifests: the corpus location, the hypothesis
    cache's *content*, and ``options`` (split seed, validation mode and ratio, expected counts
    ...). Runs that split the data differently get different folders; runs that agree share one.
    Nothing is read but the hypothesis cache; a missing cache is keyed by its path.

    Example
    -------
    >>> a = prepared_folder("results/prepared", "/data", None, seed=1, valid_ratio=0.1)
    >>> b = prepared_folder("results/prepared", "/data", None, seed=2, valid_ratio=0.1)
    >>> a != b, a == prepared_folder("results/prepared", "/data", None, seed=1, valid_ratio=0.1)
    (True, True)
    >>> a.startswith("results/prepared/")
    True
    """
    key = {
        "data_folder": str(Path(data_folder).resolve()) if data_folder else None,
        "hypotheses": file_digest(hypotheses),
        **json.loads(json.dumps(options)),
    }
    return str(Path(root) / digest(key))


def run_settings(values, rules):
    """The fingerprint of a run: every value whose rule has ``results=True``, JSON-ready.

    The hypothesis cache is identified by its content (moving it changes nothing; completing it
    does). Bookkeeping (output paths, ``num_workers``, ``skip_prep``...) is left out, and so is
    ``fold``: it names the folder itself.

    Example
    -------
    >>> run_settings({"lr": 0.1, "num_workers": 4, "use_gan": True}, SCHEMA)
    {'lr': 0.1, 'use_gan': True}
    """
    settings = {}
    for key in sorted(rules):
        if not rules[key].results or key == "fold" or key not in values:
            continue
        value = values[key]
        if key == "hypotheses_file":
            value = file_digest(value)
        settings[key] = value
    return json.loads(json.dumps(settings))


def settings_differences(old, new):
    """``key: old -> new`` for every setting that differs (absent keys shown as ``<absent>``).

    Example
    -------
    >>> settings_differences({"use_gan": True, "lr": 0.1}, {"use_gan": False, "lr": 0.1})
    ['use_gan: True -> False']
    """
    absent = "<absent>"
    return [f"{k}: {old.get(k, absent)} -> {new.get(k, absent)}"
            for k in sorted(set(old) | set(new)) if old.get(k, absent) != new.get(k, absent)]


def previous_settings(output_folder):
    """The settings recorded in ``<output_folder>/fingerprint.json``.

    Returns
    -------
    dict or None or str
        The settings; None when the folder holds no run yet; ``"unknown"`` when it holds a run
        (checkpoints or test results) recorded before fingerprints existed.
    """
    output_folder = Path(output_folder)
    path = output_folder / FINGERPRINT_FILE
    if path.is_file():
        with open(path, encoding="utf-8") as fin:
            return json.load(fin)["settings"]
    holds_run = (output_folder / "test_metrics.json").is_file() or any(
        (output_folder / "save").glob("CKPT+*"))
    return "unknown" if holds_run else None


def rerun_conflict(output_folder, settings):
    """None when ``output_folder`` is empty or holds a run with ``settings``, else the problem.

    Returns
    -------
    str or None
        One line: what differs (``key: old -> new; ...``), or that the old run's settings are
        unknown.
    """
    previous = previous_settings(output_folder)
    if previous is None:
        return None
    if previous == "unknown":
        return f"{output_folder} holds a run whose settings were not recorded"
    differences = settings_differences(previous, settings)
    if not differences:
        return None
    return (f"{output_folder} holds a run with other settings ("
            + "; ".join(differences) + ")")


def rerun_error(conflict):
    """The one-line refusal for a :func:`rerun_conflict`, with both ways to proceed."""
    return ConfigError(
        f"{conflict}: resuming would re-test and report that run. Start a separate run with a new "
        "--experiment_name=<name>, or replace this one with --overwrite=True (the old folder is "
        "moved aside, not deleted)"
    )


def record_fingerprint(output_folder, settings):
    """Write ``<output_folder>/fingerprint.json`` (atomic): the settings and their digest."""
    from m4ser_lobes.utils.fileio import atomic_write_json

    atomic_write_json(Path(output_folder) / FINGERPRINT_FILE,
                      {"digest": digest(settings), "settings": settings})


# ------------------------------------------------------------------------------ description
def describe(values, settings=None):
    """Which parts of M4SER a run uses: modalities, MSR, MIR, AED, AEC, GAN, LCL, text, encoders.

    Example
    -------
    >>> d = describe({"modalities": "both", "use_msr": True, "use_mir": False, "use_aed": False,
    ...               "use_aec": True, "use_gan": False, "use_lcl": True,
    ...               "text_source": "hypothesis", "speech_encoder_source": "hubert",
    ...               "text_encoder_source": "bert"})
    >>> d["aec"], d["speech_encoder"], d["summary"]
    ('full', 'hubert', 'both modalities, MSR, AEC full, LCL; text: hypothesis; encoders: hubert + bert')
    """
    get = values.get
    modalities = get("modalities")
    speech = modalities in ("both", "speech")
    text = modalities in ("both", "text")
    fused = modalities == "both"
    aec = ("selective" if get("use_aed") else "full") if get("use_aec") else False
    parts = {
        "msr": bool(fused and get("use_msr")),
        "mir": bool(fused and get("use_mir")),
        "aed": bool(get("use_aed")),
        "aec": aec,
        "gan": bool(get("use_gan")),
        "lcl": bool(get("use_lcl")),
    }
    described = {
        "experiment_name": get("experiment_name"),
        "seed": get("seed"),
        "modalities": modalities,
        **parts,
        "text_source": get("text_source") if text or parts["aed"] or aec else None,
        "hypotheses_file": get("hypotheses_file"),
        "speech_encoder": get("speech_encoder_source") if speech else None,
        "text_encoder": get("text_encoder_source") if text or parts["aed"] or aec else None,
    }
    names = [n.upper() for n in ("msr", "mir", "aed") if parts[n]]
    if aec:
        names.append(f"AEC {aec}")
    names += [n.upper() for n in ("gan", "lcl") if parts[n]]
    encoders = " + ".join(e for e in (described["speech_encoder"], described["text_encoder"]) if e)
    summary = f"{modalities} modalities, {', '.join(names) or 'no auxiliary part'}"
    if described["text_source"]:
        summary += f"; text: {described['text_source']}"
    if get("class_weights"):
        summary += f"; L_ER class weights: {get('class_weights')}"
    described["summary"] = f"{summary}; encoders: {encoders}"
    if settings is not None:
        described["settings_digest"] = digest(settings)
    return described
