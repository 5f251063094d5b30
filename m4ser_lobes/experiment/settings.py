"""The settings of a run, checked by pydantic before anything is built, and the run's fingerprint.

A run's YAML (the model file plus its corpus file plus ``--key=value`` overrides) is first read
as plain values, exactly as HyperPyYAML will see them but without building any object
(:func:`load_values`). Those values are checked by two pydantic models: :class:`ModelSettings`
(every corpus-agnostic key of ``hparams/m4ser.yaml``) and the corpus's own model
(``m4ser_lobes.corpora.iemocap.IemocapSettings`` ...), then by the cross-key rules
(:func:`check_combinations`; the switch rules are :func:`m4ser_lobes.switches.check_switches`,
which the model also calls at construction). Only then are objects built. ``--use_gan=no`` on
the command line is the YAML *string* ``'no'``; strict types refuse it with one line that names
the key, the value, what is allowed and the fix.

A field marked :data:`BOOKKEEPING` (paths, worker counts ...) does not change what a run trains
or reports; every other field is part of the run's fingerprint (:func:`fingerprint`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from m4ser_lobes.data.dataio import TEXT_SOURCES
from m4ser_lobes.fusion import MODALITIES
from m4ser_lobes.metrics import SELECTION_METRICS
from m4ser_lobes.mir import HST_TEXT_SOURCES
from m4ser_lobes.switches import check_switches

#: ``json_schema_extra`` of a field that is not part of the fingerprint.
BOOKKEEPING = {"fingerprint": False}
PRECISIONS = ("fp32", "fp16", "bf16")
#: SpeechBrain run options that, given on the command line, replace the YAML value of the same
#: name (``--precision=bf16`` is a run option, not an override).
RUN_OPTION_KEYS = ("precision", "grad_accumulation_factor", "max_grad_norm",
                   "ckpt_interval_minutes", "find_unused_parameters")


class ConfigError(ValueError):
    """A configuration value or combination that cannot run; the message is one line."""


def Real(ge=None, gt=None, lt=None, le=None):  # noqa: N802 (a type)
    """A finite number (integers accepted, booleans refused) within the bounds."""
    return Annotated[Union[StrictInt, Annotated[float, Field(strict=True)]],
                     Field(ge=ge, gt=gt, lt=lt, le=le, allow_inf_nan=False)]


def Integer(ge=None, le=None):  # noqa: N802 (a type)
    """An integer (booleans and ``2.0`` refused) within the bounds."""
    return Annotated[StrictInt, Field(ge=ge, le=le)]


Text = Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]
Book = Field(json_schema_extra=BOOKKEEPING)


def choice(values):
    """``Literal`` of ``values`` (``choice(("a", "b"))`` is ``Literal["a", "b"]``)."""
    return Literal[tuple(values)]


class Settings(BaseModel):
    """Base of the settings models: keys not declared here belong to another model."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ModelSettings(Settings):
    """Every corpus-agnostic key of ``hparams/m4ser.yaml`` (Table I and the Table IV switches)."""

    # run
    seed: Integer(ge=0)
    experiment_name: Text = Book
    results_folder: Text = Book
    output_folder: Text = Book
    save_folder: Text = Book
    data_folder: Text = Book  # the data's identity is its manifests' content
    hypotheses_file: Optional[Text] = Book  # ditto
    train_annotation: Text = Book  # the corpus file computes them, or --skip_prep=True with yours
    valid_annotation: Text = Book
    test_annotation: Text = Book
    prepare_root: Text = Book
    skip_prep: StrictBool = Book
    overwrite: StrictBool = Book
    text_source: choice(TEXT_SOURCES)
    max_audio_seconds: Optional[Real(gt=0)]
    max_tokens: Optional[Integer(ge=3)]  # [CLS], at least one token, [SEP]
    keep_punctuation: StrictBool  # the encoder reads the text's punctuation (design.md §4)
    # a study's fine-tuning start: part of the run's identity (run.run_identity), not a setting
    init_from: Optional[Text] = Field(default=None, json_schema_extra=BOOKKEEPING)
    save_embeddings: StrictBool = Book  # the test stage writes embeddings.npz (Figs. 9, 10)
    selection_metric: choice(SELECTION_METRICS)
    num_emotions: Integer(ge=2)
    # encoders
    speech_encoder_source: Text
    text_encoder_source: Text
    pretrained_cache: Text = Book
    freeze_speech_encoder: StrictBool
    freeze_text_encoder: StrictBool
    # sizes
    d_model: Integer(ge=1)
    nhead: Integer(ge=1)
    cme_layers: Integer(ge=1)
    cme_ffn: Optional[Integer(ge=1)]
    dropout: Real(ge=0, lt=1)
    er_dropout: Real(ge=0, lt=1)
    hst_text_source: choice(HST_TEXT_SOURCES)
    discriminator_hidden: Integer(ge=1)
    aec_layers: Integer(ge=1)
    aec_ffn: Integer(ge=1)
    aec_max_len: Integer(ge=1)
    # Table IV switches
    modalities: choice(MODALITIES)
    use_msr: StrictBool
    use_mir: StrictBool
    use_aed: StrictBool
    use_aec: StrictBool
    use_gan: StrictBool
    use_lcl: StrictBool
    # loss weights (Eq. 22)
    alpha: Real(ge=0)
    beta: Real(ge=0)
    gamma: Real(ge=0)
    lam: Real(ge=0)
    tau: Real(gt=0)
    class_weights: Optional[Literal["balanced"]]
    # training
    number_of_epochs: Integer(ge=1)
    batch_size: Integer(ge=1)
    lr: Real(gt=0)
    lr_speech_encoder: Real(gt=0)
    lr_text_encoder: Real(gt=0)
    lr_head: Real(gt=0)
    lr_discriminator: Real(gt=0)
    max_grad_norm: Real(ge=0)
    precision: choice(PRECISIONS)
    grad_accumulation_factor: Integer(ge=1)
    ckpt_interval_minutes: Real(ge=0) = Book
    find_unused_parameters: StrictBool = Book
    num_workers: Integer(ge=0) = Book
    cpu_threads: Optional[Integer(ge=1)] = Book  # null: run.choose_threads decides
    bucketing: StrictBool
    max_batch_seconds: Optional[Real(gt=0)]
    num_buckets: Integer(ge=1)


def fingerprint_keys(*models):
    """The fields of ``models`` that change what a run trains or reports.

    Example
    -------
    >>> keys = fingerprint_keys(ModelSettings)
    >>> "use_gan" in keys, "num_workers" in keys, "output_folder" in keys
    (True, False, False)
    """
    keys = set()
    for model in models:
        for name, field in model.model_fields.items():
            if (field.json_schema_extra or {}).get("fingerprint", True):
                keys.add(name)
    return sorted(keys)


# ------------------------------------------------------------------------------ reading
def load_values(hparams_file, overrides=None):
    """Plain values of a HyperPyYAML file with ``overrides`` (YAML text) applied; builds nothing.

    References are resolved by HyperPyYAML and the result is read with the loader HyperPyYAML
    itself uses (YAML 1.2: ``no``/``off`` stay strings, ``1e-3`` is a number). Objects
    (``!new:``, ``!apply:`` ...) read as None; keys starting with ``__`` are dropped.

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


def effective_values(values, run_opts=None):
    """``values`` with the SpeechBrain run options that replace YAML values (``--precision``...).

    Only options given on the command line count, as in ``sb.Brain``: SpeechBrain's
    ``RunOptions`` holds every default and names the given ones in ``overridden_args``.

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


# ------------------------------------------------------------------------------ checking
def _one_line(error: ValidationError, values, source):
    """The first problem of a pydantic error as one line: key, value, what is allowed, the fix."""
    problem = error.errors()[0]
    key = str(problem["loc"][0])
    if problem["type"] == "missing":
        return (f"{source}: {key} is missing; add it to the YAML or pass --{key}=<value> "
                f"(hparams/m4ser.yaml shows every key)")
    value = values.get(key)
    # A Union reports one error per branch: the message of the last branch is the useful one.
    messages = [p["msg"] for p in error.errors() if str(p["loc"][0]) == key]
    allowed = messages[-1].replace("Input should", "it should")
    fix = ""
    if problem["type"] == "bool_type":
        fix = f" (--{key}=True or --{key}=False)"
    elif problem["type"] == "literal_error":
        fix = f" (--{key}=<one of them>)"
    return f"{key}={value!r} is not allowed: {allowed}{fix}"


def check_values(values, models=(ModelSettings,), source="the configuration"):
    """Check ``values`` against each pydantic model; raise :class:`ConfigError` (one line).

    Example
    -------
    >>> check_values({"use_gan": "no"}, source="h.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.settings.ConfigError: h.yaml: seed is missing; ...
    """
    for model in models:
        try:
            model.model_validate(values)
        except ValidationError as error:
            raise ConfigError(_one_line(error, values, source)) from None


def check_combinations(values):
    """Refuse the combinations the model cannot train (each message says what to change).

    The switch rules have one owner, :func:`m4ser_lobes.switches.check_switches`, which the
    model also calls when it is built.

    Example
    -------
    >>> check_combinations({"modalities": "speech", "use_mir": True, "use_gan": True,
    ...                     "use_msr": True, "use_aed": False, "use_aec": False,
    ...                     "text_source": "hypothesis"})
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.settings.ConfigError: use_gan=True needs the modality-invariant representation H_inv, which exists only with modalities=both and use_mir=True (got modalities=speech, use_mir=True): add --use_gan=False
    """
    get = values.get
    try:
        check_switches(**{k: get(k) for k in ("modalities", "use_msr", "use_mir", "use_aed",
                                              "use_aec", "use_gan", "text_source")})
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if isinstance(get("d_model"), int) and isinstance(get("nhead"), int) and \
            get("d_model") % get("nhead"):
        raise ConfigError(
            f"d_model={get('d_model')} is not divisible by nhead={get('nhead')}: the attention "
            "heads split the width evenly; choose nhead among the divisors of d_model"
        )
    if get("text_source") == "hypothesis" and "hypotheses_file" in values and \
            get("hypotheses_file") is None and not get("skip_prep"):
        raise ConfigError(
            "text_source=hypothesis needs ASR hypotheses but hypotheses_file=null: pass "
            "--hypotheses_file=<cache written by m4ser-asr>, or train on human "
            "transcripts with --text_source=transcript --use_aed=False --use_aec=False"
        )
    hypotheses = get("hypotheses_file")
    if hypotheses is not None and not get("skip_prep") and not Path(hypotheses).is_file():
        raise ConfigError(
            f"hypotheses_file={hypotheses} does not exist: create it with m4ser-asr, fix the "
            "path, or pass --hypotheses_file=null --text_source=transcript --use_aed=False "
            "--use_aec=False"
        )


def fingerprint(values, *models):
    """The settings of ``values`` that change results (every non-bookkeeping field), JSON-ready.

    Example
    -------
    >>> fingerprint({"lr": 0.1, "num_workers": 4, "use_gan": True}, ModelSettings)
    {'lr': 0.1, 'use_gan': True}
    """
    from m4ser_lobes.utils.identity import canonical

    return canonical({k: values[k] for k in fingerprint_keys(*models) if k in values})


# ------------------------------------------------------------------------------ description
#: ``validation`` of a corpus without that key (MELD): it validates on its own dev split.
DEV_SPLIT = "dev"
#: The keys of :func:`protocol` (in ``configuration.json``, ``test_metrics.json``, the reports).
PROTOCOL_KEYS = ("selection_metric", "validation", "valid_ratio", "seed", "batching", "optimistic")
#: Modalities as the run summary words them.
MODALITY_WORDS = {"both": "speech + text", "speech": "speech only", "text": "text only"}


def batching(values):
    """How training batches are drawn: ``bucketing``, ``batch_size``, ``max_batch_seconds``,
    ``num_buckets`` (None with random batches, which have neither).

    Example
    -------
    >>> batching({"bucketing": False, "batch_size": 16, "max_batch_seconds": None, "num_buckets": 20})
    {'bucketing': False, 'batch_size': 16, 'max_batch_seconds': None, 'num_buckets': None}
    """
    bucketed = bool(values.get("bucketing"))
    return {"bucketing": bucketed, "batch_size": values.get("batch_size"),
            "max_batch_seconds": values.get("max_batch_seconds") if bucketed else None,
            "num_buckets": values.get("num_buckets") if bucketed else None}


def protocol(values):
    """How a run's tested checkpoint was chosen and its batches drawn (every report states it).

    Returns
    -------
    dict
        ``selection_metric``, ``validation`` (``train_sessions``, ``test_fold``, or
        :data:`DEV_SPLIT` for a corpus without the key), ``valid_ratio`` (None unless a share of
        the training data is held out), ``seed``, ``batching`` (:func:`batching`) and
        ``optimistic``: True when the checkpoint was chosen on the test set itself
        (``validation=test_fold``), so that its test numbers are an upper bound.

    Example
    -------
    >>> p = protocol({"selection_metric": "UA", "validation": "test_fold", "valid_ratio": 0.1,
    ...               "seed": 7, "bucketing": False, "batch_size": 16})
    >>> p["validation"], p["valid_ratio"], p["optimistic"]
    ('test_fold', None, True)
    """
    validation = values.get("validation") or DEV_SPLIT
    return {
        "selection_metric": values.get("selection_metric", "UA"),
        "validation": validation,
        "valid_ratio": values.get("valid_ratio") if validation == "train_sessions" else None,
        "seed": values.get("seed"),
        "batching": batching(values),
        "optimistic": validation == "test_fold",
    }


def protocol_text(protocol):
    """:func:`protocol` as one line (run summary, report headers, final log line).

    Example
    -------
    >>> print(protocol_text(protocol({"selection_metric": "UA", "validation": "train_sessions",
    ...     "valid_ratio": 0.1, "seed": 1986, "bucketing": False, "batch_size": 16})))
    checkpoint of the best UA on a 10 % hold-out of the training sessions (validation=train_sessions), seed 1986; random batches of 16
    >>> print(protocol_text(protocol({"selection_metric": "W-F1", "seed": 1, "bucketing": True,
    ...     "batch_size": 16, "max_batch_seconds": 60.0, "num_buckets": 20})))
    checkpoint of the best W-F1 on the dev set (validation=dev), seed 1; duration-bucketed batches of up to 60 s of audio (20 buckets)
    >>> print(protocol_text(protocol({"selection_metric": "UA", "validation": "test_fold",
    ...     "seed": 7, "bucketing": True, "batch_size": 8, "num_buckets": 20})))
    OPTIMISTIC: checkpoint of the best UA on the test session itself (validation=test_fold), seed 7; duration-bucketed batches of 8 (20 buckets)
    """
    validation, ratio = protocol.get("validation"), protocol.get("valid_ratio")
    share = "a" if ratio is None else f"a {100 * ratio:g} %"
    where = {"train_sessions": f"{share} hold-out of the training sessions",
             "test_fold": "the test session itself", DEV_SPLIT: "the dev set",
             "valid_annotation": "the given valid_annotation manifest"}.get(validation,
                                                                                     validation)
    text = (f"checkpoint of the best {protocol.get('selection_metric')} on {where} "
            f"(validation={validation}), seed {protocol.get('seed')}")
    if protocol.get("optimistic"):
        text = "OPTIMISTIC: " + text
    batches = protocol.get("batching") or {}
    if not batches.get("bucketing"):
        return f"{text}; random batches of {batches.get('batch_size')}"
    size = batches.get("batch_size") if batches.get("max_batch_seconds") is None else \
        f"up to {batches['max_batch_seconds']:g} s of audio"
    return f"{text}; duration-bucketed batches of {size} ({batches.get('num_buckets')} buckets)"


def describe(values, ran=None):
    """Which parts of M4SER a run uses (modalities, MSR, MIR, AED, AEC, GAN, LCL, text,
    encoders) and how its checkpoint is chosen and its batches drawn (``ran``, by default
    :func:`protocol` of ``values``).

    ``summary`` says all of it in one line (the run's first log line); ``parts_summary`` the
    parts and encoders only.

    Example
    -------
    >>> d = describe({"modalities": "both", "use_msr": True, "use_mir": False, "use_aed": False,
    ...               "use_aec": True, "use_gan": False, "use_lcl": True,
    ...               "text_source": "hypothesis", "speech_encoder_source": "hubert",
    ...               "text_encoder_source": "bert", "selection_metric": "UA", "seed": 3,
    ...               "validation": "train_sessions", "valid_ratio": 0.1, "batch_size": 16})
    >>> d["aec"], d["speech_encoder"], d["batching"]["bucketing"], d["optimistic"]
    ('full', 'hubert', False, False)
    >>> print(d["summary"])
    speech + text, MSR, AEC full, LCL; text: hypothesis; encoders: hubert + bert; checkpoint of the best UA on a 10 % hold-out of the training sessions (validation=train_sessions), seed 3; random batches of 16
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
    reads_text = text or parts["aed"] or bool(aec)
    described = {
        "experiment_name": get("experiment_name"),
        "seed": get("seed"),
        "modalities": modalities,
        **parts,
        "text_source": get("text_source") if reads_text else None,
        "hypotheses_file": get("hypotheses_file"),
        "speech_encoder": get("speech_encoder_source") if speech else None,
        "text_encoder": get("text_encoder_source") if reads_text else None,
    }
    names = [n.upper() for n in ("msr", "mir", "aed") if parts[n]]
    if aec:
        names.append(f"AEC {aec}")
    names += [n.upper() for n in ("gan", "lcl") if parts[n]]
    encoders = " + ".join(e for e in (described["speech_encoder"], described["text_encoder"]) if e)
    summary = (f"{MODALITY_WORDS.get(modalities, modalities)}, "
               f"{', '.join(names) or 'no auxiliary part'}")
    if described["text_source"]:
        summary += f"; text: {described['text_source']}"
    if get("class_weights"):
        summary += f"; L_ER class weights: {get('class_weights')}"
    ran = protocol(values) if ran is None else ran
    described.update(ran)
    described["parts_summary"] = f"{summary}; encoders: {encoders}"
    described["summary"] = f"{described['parts_summary']}; {protocol_text(ran)}"
    return described
