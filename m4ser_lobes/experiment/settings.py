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
    # a study's fine-tuning start: part of the run's identity (run.run_identity), not a setting
    init_from: Optional[Text] = Field(default=None, json_schema_extra=BOOKKEEPING)
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
    lr_encoders: Real(gt=0)
    lr_head: Real(gt=0)
    lr_discriminator: Real(gt=0)
    max_grad_norm: Real(ge=0)
    precision: choice(PRECISIONS)
    grad_accumulation_factor: Integer(ge=1)
    ckpt_interval_minutes: Real(ge=0) = Book
    find_unused_parameters: StrictBool = Book
    num_workers: Integer(ge=0) = Book
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
    ...                     "use_msr": True, "use_aed": False, "use_aec": False})
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.settings.ConfigError: use_gan=True needs the modality-invariant representation H_inv, which exists only with modalities=both and use_mir=True (got modalities=speech, use_mir=True): add --use_gan=False
    """
    get = values.get
    try:
        check_switches(**{k: get(k) for k in ("modalities", "use_msr", "use_mir", "use_aed",
                                              "use_aec", "use_gan")})
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
            "transcripts with --text_source=transcript"
        )
    hypotheses = get("hypotheses_file")
    if hypotheses is not None and not get("skip_prep") and not Path(hypotheses).is_file():
        raise ConfigError(
            f"hypotheses_file={hypotheses} does not exist: create it with m4ser-asr, fix the "
            "path, or pass --hypotheses_file=null --text_source=transcript"
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
def describe(values):
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
    summary = f"{modalities} modalities, {', '.join(names) or 'no auxiliary part'}"
    if described["text_source"]:
        summary += f"; text: {described['text_source']}"
    if get("class_weights"):
        summary += f"; L_ER class weights: {get('class_weights')}"
    described["summary"] = f"{summary}; encoders: {encoders}"
    return described
