"""The inference YAML of an export: one packaged file plus the trained model's values.

``m4ser_lobes/inference/inference.yaml`` (package data) is the only inference configuration: the
encoders, the fusion, the emotion head, the optional AED/AEC constructors and the Pretrainer,
with the paper's sizes (``hparams/m4ser.yaml``) as defaults. An export does not generate YAML:
:func:`export_overrides` reads the values of :data:`EXPORTED_KEYS` from the training
hyperparameters and the trained model, and :func:`write_inference_yaml` writes the packaged file
with them in place (a HyperPyYAML override of top-level keys, comments and tags kept) as the
export's ``hyperparams.yaml``. Loading the written file is therefore loading the packaged one with
the same overrides::

    load_hyperpyyaml(open("export/hyperparams.yaml"))
    == load_hyperpyyaml(open(INFERENCE_YAML), export_overrides(...))
"""

from __future__ import annotations

import io
from pathlib import Path

from m4ser_lobes.utils.fileio import atomic_write_text

#: The packaged inference YAML (installed with the package: ``setup.py`` package_data).
INFERENCE_YAML = Path(__file__).with_name("inference.yaml")

#: Training-YAML keys whose values an export copies unchanged.
TRAINING_KEYS = (
    "d_model",
    "nhead",
    "cme_layers",
    "cme_ffn",
    "dropout",
    "er_dropout",
    "hst_text_source",
    "num_emotions",
    "modalities",
    "use_msr",
    "use_mir",
    "max_tokens",
    "keep_punctuation",
)

#: Training keys that runs recorded before the key existed lack, with the value they trained with.
OLD_RUN_VALUES = {"keep_punctuation": False}

#: Keys of the packaged YAML that AED/AEC need; null in an export without a corrector.
CORRECTOR_KEYS = (
    "corrector_path",
    "aec_max_len",
    "aec_vocab_size",
    "aec_embed_dim",
    "aec_layers",
    "aec_ffn",
    "aed_head",
    "aec_decoder",
)

#: Every key an export may override (all top-level keys of the packaged YAML).
EXPORTED_KEYS = TRAINING_KEYS + (
    "window_seconds",
    "max_windows",
    "batch_size",
    "asr_model",
    "asr_backend",
    "speech_encoder",
    "text_encoder",
    "has_corrector",
) + CORRECTOR_KEYS

#: ``asr_model`` of an export that bundles its Whisper model in ``asr/``.
BUNDLED_ASR = "!ref <pretrained_path>/asr"


def _ruamel():
    """A round-trip ruamel YAML (comments, tags, layout kept) writing None as ``null``."""
    import ruamel.yaml

    yaml = ruamel.yaml.YAML()
    yaml.indent(mapping=4, sequence=4, offset=2)  # the packaged file's layout, kept as written
    yaml.boolean_representation = ["False", "True"]
    yaml.width = 100
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _node(value):
    """An override value as a YAML node: :data:`BUNDLED_ASR` becomes a ``!ref`` tag."""
    if value == BUNDLED_ASR:
        from ruamel.yaml.comments import TaggedScalar

        return TaggedScalar(BUNDLED_ASR.split(" ", 1)[1], tag="!ref")
    return value


def render_inference_yaml(overrides=None, template=INFERENCE_YAML):
    """The packaged inference YAML with ``overrides`` applied to its top-level keys.

    Arguments
    ---------
    overrides : dict, optional
        Top-level key -> value (a scalar, None; ``asr_model`` may be :data:`BUNDLED_ASR`).
    template : str or Path
        The YAML to fill (default :data:`INFERENCE_YAML`).

    Returns
    -------
    str

    Raises
    ------
    KeyError
        An override names a key that the YAML does not have.

    Example
    -------
    >>> text = render_inference_yaml({"d_model": 32, "text_encoder": None,
    ...                               "asr_model": BUNDLED_ASR})
    >>> "d_model: 32\\n" in text, "text_encoder: null\\n" in text, "!new:m4ser_lobes.fusion" in text
    (True, True, True)
    >>> "asr_model: !ref <pretrained_path>/asr\\n" in text
    True
    >>> render_inference_yaml({"dmodel": 32})
    Traceback (most recent call last):
    ...
    KeyError: '.../inference.yaml has no top-level key dmodel; the keys an export sets are ...'
    """
    yaml = _ruamel()
    template = Path(template)
    with open(template, encoding="utf-8") as fin:
        document = yaml.load(fin)
    for key, value in (overrides or {}).items():
        if key not in document:
            raise KeyError(
                f"{template} has no top-level key {key}; the keys an export sets are "
                f"{', '.join(EXPORTED_KEYS)}"
            )
        document[key] = _node(value)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def hyperpyyaml_overrides(overrides):
    """``overrides`` as ``load_hyperpyyaml(INFERENCE_YAML, ...)`` takes them (tags as nodes)."""
    return {key: _node(value) for key, value in overrides.items()}


def export_overrides(
    hparams,
    model,
    asr_model,
    window_seconds,
    max_windows,
    batch_size,
    corrector,
    asr_backend="transformers",
):
    """The values an export writes into the packaged YAML, from the trained run.

    Arguments
    ---------
    hparams : dict
        The loaded training YAML (:data:`TRAINING_KEYS`, those of :data:`OLD_RUN_VALUES`
        optional; optionally ``max_audio_seconds``, ``aec_max_len``, ``aec_layers`` and
        ``aec_ffn``).
    model : m4ser_lobes.model.M4SER
        The trained model (which encoders it uses; the text encoder's vocabulary for AEC).
    asr_model : str
        Whisper Hub id, or :data:`BUNDLED_ASR`.
    window_seconds : float or None
        Long-audio window; None: the training ``max_audio_seconds`` (20 s without a crop).
    max_windows, batch_size : int
    corrector : bool
        The export holds ``corrector.ckpt`` (AED + AEC).
    asr_backend : str

    Returns
    -------
    dict
        Keys of :data:`EXPORTED_KEYS`.
    """
    missing = [k for k in TRAINING_KEYS if k not in hparams and k not in OLD_RUN_VALUES]
    if missing:
        raise KeyError(f"the training YAML lacks {missing}; export needs {list(TRAINING_KEYS)}")
    values = {k: hparams[k] if k in hparams else OLD_RUN_VALUES[k] for k in TRAINING_KEYS}
    values.update(
        window_seconds=float(window_seconds or hparams.get("max_audio_seconds") or 20.0),
        max_windows=int(max_windows),
        batch_size=int(batch_size),
        asr_model=asr_model,
        asr_backend=asr_backend,
        has_corrector=bool(corrector),
    )
    # The packaged encoder nodes stay for the modalities the model reads; the others are null.
    if not model.uses_speech:
        values["speech_encoder"] = None
    if not model.uses_text:
        values["text_encoder"] = None
    if corrector:
        values.update(
            aec_max_len=hparams.get("aec_max_len", 16),
            aec_vocab_size=model.text_encoder.vocab_size,
            aec_embed_dim=model.text_encoder.embedding_dim,
            aec_layers=hparams["aec_layers"],
            aec_ffn=hparams["aec_ffn"],
        )
    else:
        values.update(dict.fromkeys(CORRECTOR_KEYS))
    return values


def write_inference_yaml(path, overrides):
    """Write the packaged YAML with ``overrides`` baked in to ``path`` (atomically)."""
    atomic_write_text(path, render_inference_yaml(overrides))
