"""Export a trained M4SER checkpoint as a self-contained inference folder (local or on the Hub).

    m4ser-export --checkpoint results/m4ser/fold1/seed1986 --out exported/m4ser-iemocap-fold1 \\
        [--asr-model openai/whisper-medium.en] [--asr-backend faster-whisper] [--overwrite]

(or ``python -m m4ser_lobes.inference.export ...``).

``--checkpoint`` is a training output folder (its best-UA checkpoint is taken, the one the
recipe tested), its ``save/`` folder, or one ``save/CKPT+...`` folder. The training YAML
(``--hparams``, default ``<output_folder>/hyperparams.yaml``) rebuilds the trained model, so the
encoders' original sources must be reachable (cached) where this runs. The folder written::

    hyperparams.yaml      inference only: encoders, fusion, emotion head, Pretrainer; ASR model name
    model.ckpt            weights of the inference model except the pretrained backbones
    speech_encoder/       the fine-tuned speech backbone: save_pretrained + feature extractor config
    text_encoder/         the fine-tuned text backbone: save_pretrained + tokenizer
    label_encoder.txt     class names
    corrector.ckpt        AED head + AEC decoder (if trained; loaded only to correct transcripts)
    asr/                  the ASR model, only when --asr-model is a local folder
    test_metrics.json     the training run's test metrics (when present)
    export_info.json      checkpoint, classes, ASR model and backend, training data (as JSON)
    README.md             model card: data, fold, metrics, how to load and share

What the exported files say about the training data (corpus, test fold or split, text source and
its ASR model, utterance counts read from the training manifests) and about the encoders and ASR
model never includes a local path: a local folder is named by its last component only
(:func:`public_name`), so the folder can be published as is.

The modality discriminator and the optimisers are not exported. The folder is written under a
temporary name, loaded back with :class:`m4ser_lobes.inference.classifier.M4SERClassifier` and checked
against the trained model (identical weights, identical logits), then renamed into place; an
existing ``--out`` is replaced only with ``--overwrite``.

Sharing on the Hugging Face Hub (the exported folder is the repo root)::

    from huggingface_hub import HfApi
    HfApi().create_repo("org/m4ser-iemocap-fold1", repo_type="model", exist_ok=True)
    HfApi().upload_folder(folder_path="exported/m4ser-iemocap-fold1",
                          repo_id="org/m4ser-iemocap-fold1", repo_type="model")

    classifier = M4SERClassifier.from_hparams(source="org/m4ser-iemocap-fold1")
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import string
import sys
import tempfile
from pathlib import Path

import torch

from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text
from m4ser_lobes.inference.classifier import BACKBONE_PREFIXES, CORRECTOR_FILE

logger = logging.getLogger(__name__)

DEFAULT_ASR_MODEL = "openai/whisper-medium.en"
CORRECTOR_PREFIXES = ("aed_head.", "aec_decoder.")

# The inference YAML; ``$name`` fields are filled by :func:`render_inference_yaml`.
INFERENCE_TEMPLATE = """\
# ############################################################################
# M4SER speech emotion recognition: inference only (written by `python -m m4ser_lobes.inference.export`).
#   from m4ser_lobes.inference.classifier import M4SERClassifier
#   classifier = M4SERClassifier.from_hparams(source="<this folder or its Hub repo id>")
#   probs, score, index, labels = classifier.classify_file("speech.wav")
# The modality discriminator is not exported; AED and AEC are built from corrector.ckpt only
# when a transcript correction is asked for (paper §III-I).
# ############################################################################

# Folder holding this file; M4SERClassifier.from_hparams sets it to the local copy.
pretrained_path: .

# ---------------------------------------------------------------- inputs
sample_rate: 16000
# Transcript cap in tokens with [CLS]/[SEP], as in training.
max_tokens: $max_tokens
# Longer audio: at most max_windows windows of exactly window_seconds (the training crop),
# evenly spaced from the start to the end of the file, batch_size per forward pass; their
# probabilities are averaged.
window_seconds: $window_seconds
max_windows: $max_windows
batch_size: $batch_size

# ---------------------------------------------------------------- ASR, when no transcript is given
# asr_backend: transformers (WhisperForConditionalGeneration) or faster-whisper (CTranslate2).
asr_model: $asr_model
asr_backend: $asr_backend
asr_chunk_seconds: 30.0
asr_batch_size: 8

# ---------------------------------------------------------------- model (the training sizes)
d_model: $d_model
nhead: $nhead
cme_layers: $cme_layers
cme_ffn: $cme_ffn
dropout: $dropout
er_dropout: $er_dropout
hst_text_source: $hst_text_source
num_emotions: $num_emotions
modalities: $modalities
use_msr: $use_msr
use_mir: $use_mir

speech_encoder: $speech_encoder
text_encoder: $text_encoder
fusion: !new:m4ser_lobes.fusion.MultimodalFusion
    d_model: !ref <d_model>
    nhead: !ref <nhead>
    cme_layers: !ref <cme_layers>
    dim_feedforward: !ref <cme_ffn>
    dropout: !ref <dropout>
    modalities: !ref <modalities>
    use_msr: !ref <use_msr>
    use_mir: !ref <use_mir>
    hst_text_source: !ref <hst_text_source>

emotion_head: !new:m4ser_lobes.heads.EmotionHead
    d_model: !apply:getattr [!ref <fusion>, output_dim]
    num_classes: !ref <num_emotions>
    dropout: !ref <er_dropout>

model: !new:m4ser_lobes.model.M4SER
    fusion: !ref <fusion>
    emotion_head: !ref <emotion_head>
    speech_encoder: !ref <speech_encoder>
    text_encoder: !ref <text_encoder>

modules:
    model: !ref <model>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

# ---------------------------------------------------------------- transcript correction (optional)
$corrector
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
        label_encoder: !ref <label_encoder>
    paths:
        model: !ref <pretrained_path>/model.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
    custom_hooks:
        model: !name:m4ser_lobes.inference.classifier.load_inference_weights
"""

SPEECH_ENCODER_NODE = """!new:m4ser_lobes.encoders.SpeechEncoder
    source: !ref <pretrained_path>/speech_encoder
    output_dim: !ref <d_model>
    freeze: True"""

TEXT_ENCODER_NODE = """!new:m4ser_lobes.encoders.TextEncoder
    source: !ref <pretrained_path>/text_encoder
    output_dim: !ref <d_model>
    freeze: True"""

CORRECTOR_SECTION = """\
has_corrector: True
corrector_path: !ref <pretrained_path>/corrector.ckpt
aec_max_len: $aec_max_len
aed_head: !name:m4ser_lobes.heads.AEDHead
    d_model: !ref <d_model>
aec_decoder: !name:m4ser_lobes.aec.SelectiveAECDecoder
    d_model: !ref <d_model>
    vocab_size: $vocab_size
    embed_dim: $embed_dim
    nhead: !ref <nhead>
    num_layers: $aec_layers
    dim_feedforward: $aec_ffn
    dropout: !ref <dropout>
"""

NO_CORRECTOR_SECTION = "has_corrector: False\n"

#: Training-YAML keys copied into the inference YAML.
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
)

#: The paper's configuration (``hparams/m4ser.yaml``), rendered as ``hparams/inference.yaml``.
PAPER_VALUES = {
    "d_model": 768,
    "nhead": 12,
    "cme_layers": 1,
    "cme_ffn": None,
    "dropout": 0.1,
    "er_dropout": 0.5,
    "hst_text_source": "align",
    "num_emotions": 4,
    "modalities": "both",
    "use_msr": True,
    "use_mir": True,
    "max_tokens": 128,
    "window_seconds": 20.0,
    "max_windows": 8,
    "batch_size": 8,
    "asr_model": DEFAULT_ASR_MODEL,
    "asr_backend": "transformers",
    "uses_speech": True,
    "uses_text": True,
    "corrector": {
        "aec_max_len": 16,
        "vocab_size": 30522,
        "embed_dim": 768,
        "aec_layers": 1,
        "aec_ffn": 2048,
    },
}


def _yaml_scalar(value):
    """A Python scalar as YAML (None -> null, bool -> True/False).

    Example
    -------
    >>> [_yaml_scalar(v) for v in (None, True, 0.5, "align")]
    ['null', 'True', '0.5', 'align']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value)
    return str(value)


def render_inference_yaml(values):
    """Fill :data:`INFERENCE_TEMPLATE`.

    Arguments
    ---------
    values : dict
        :data:`TRAINING_KEYS`, ``window_seconds``, ``max_windows``, ``batch_size``,
        ``asr_model`` (a hub id, or ``!ref <pretrained_path>/asr``), ``asr_backend``,
        ``uses_speech``,
        ``uses_text`` and ``corrector`` (None, or a dict with ``aec_max_len vocab_size embed_dim
        aec_layers aec_ffn``).

    Returns
    -------
    str

    Example
    -------
    >>> text = render_inference_yaml(PAPER_VALUES)
    >>> "ModalityDiscriminator" in text, "!new:m4ser_lobes.aec" in text, "d_model: 768" in text
    (False, False, True)
    """
    fields = {k: _yaml_scalar(v) for k, v in values.items() if not isinstance(v, dict)}
    fields["speech_encoder"] = SPEECH_ENCODER_NODE if values["uses_speech"] else "null"
    fields["text_encoder"] = TEXT_ENCODER_NODE if values["uses_text"] else "null"
    corrector = values.get("corrector")
    fields["corrector"] = (
        string.Template(CORRECTOR_SECTION).substitute(
            {k: _yaml_scalar(v) for k, v in corrector.items()}
        )
        if corrector
        else NO_CORRECTOR_SECTION
    )
    return string.Template(INFERENCE_TEMPLATE).substitute(fields)


# --------------------------------------------------------------------------------------------
# Finding what to export
# --------------------------------------------------------------------------------------------


class TrainingRun:
    """The files of one training run that an export needs (see :func:`locate_run`)."""

    def __init__(self, checkpoint, save_folder, hparams_file, label_encoder, best):
        self.checkpoint = Path(checkpoint)  # save/CKPT+...
        self.save_folder = Path(save_folder)
        self.hparams_file = Path(hparams_file)
        self.label_encoder = Path(label_encoder)
        self.is_best = best  # the best-UA checkpoint (the one the recipe tested)
        self.output_folder = self.save_folder.parent

    @property
    def meta(self):
        """The checkpoint's ``CKPT.yaml`` (validation metrics)."""
        import yaml

        with open(self.checkpoint / "CKPT.yaml", encoding="utf-8") as fin:
            return yaml.safe_load(fin) or {}


def best_checkpoint(save_folder, key="UA"):
    """The checkpoint with the highest ``key`` (the recipe's ``max_key``), else the latest one.

    Example
    -------
    >>> save = getfixture("tmp_path")
    >>> for name, ua in (("CKPT+1", 40.0), ("CKPT+2", 55.0), ("CKPT+3", None)):
    ...     (save / name).mkdir()
    ...     meta = "end-of-epoch: true\\nunixtime: %d\\n" % int(name[-1])
    ...     _ = (save / name / "CKPT.yaml").write_text(meta + (f"UA: {ua}\\n" if ua else ""))
    >>> best_checkpoint(save).name
    'CKPT+2'
    """
    from speechbrain.utils.checkpoints import Checkpointer

    checkpointer = Checkpointer(save_folder)
    found = checkpointer.find_checkpoint(max_key=key)
    if found is None:
        found = checkpointer.find_checkpoint()
        if found is None:
            raise FileNotFoundError(f"{save_folder}: no CKPT+* checkpoint folder")
        logger.warning(
            "no checkpoint of %s records %s; taking the latest, %s",
            save_folder,
            key,
            found.path.name,
        )
    return Path(found.path)


def locate_run(checkpoint, hparams_file=None, label_encoder=None):
    """Resolve ``--checkpoint`` (output, save or CKPT folder) into a :class:`TrainingRun`."""
    checkpoint = Path(checkpoint)
    if (checkpoint / "CKPT.yaml").is_file():
        save_folder = checkpoint.parent
    else:
        save_folder = checkpoint / "save" if (checkpoint / "save").is_dir() else checkpoint
        if not save_folder.is_dir():
            raise FileNotFoundError(
                f"{checkpoint}: not a training output folder, save folder or CKPT+* folder"
            )
        checkpoint = best_checkpoint(save_folder)
    best = checkpoint.resolve() == best_checkpoint(save_folder).resolve()
    hparams_file = Path(hparams_file or save_folder.parent / "hyperparams.yaml")
    label_encoder = Path(label_encoder or save_folder / "label_encoder.txt")
    for path, flag in (
        (hparams_file, "--hparams"),
        (label_encoder, "--label-encoder"),
        (checkpoint / "model.ckpt", "--checkpoint"),
    ):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; pass its location with {flag}")
    return TrainingRun(checkpoint, save_folder, hparams_file, label_encoder, best)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def load_trained_model(run):
    """Rebuild the trained M4SER from the training YAML and load the checkpoint (strict)."""
    from hyperpyyaml import load_hyperpyyaml

    with open(run.hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin)
    model = hparams["model"]
    state = torch.load(run.checkpoint / "model.ckpt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return hparams, model.eval()


def split_state_dict(model):
    """(inference weights without the backbones, corrector weights) of a trained M4SER."""
    inference, corrector = {}, {}
    for key, value in model.state_dict().items():
        if key.startswith(CORRECTOR_PREFIXES):
            corrector[key] = value
        elif not key.startswith(BACKBONE_PREFIXES):
            inference[key] = value
    return inference, corrector


def inference_values(
    hparams,
    model,
    asr_model,
    window_seconds,
    max_windows,
    batch_size,
    corrector,
    asr_backend="transformers",
):
    """The fields of :func:`render_inference_yaml` for a trained model."""
    missing = [k for k in TRAINING_KEYS if k not in hparams]
    if missing:
        raise KeyError(f"the training YAML lacks {missing}; export needs {list(TRAINING_KEYS)}")
    values = {k: hparams[k] for k in TRAINING_KEYS}
    values.update(
        window_seconds=float(window_seconds or hparams.get("max_audio_seconds") or 20.0),
        max_windows=int(max_windows),
        batch_size=int(batch_size),
        asr_model=asr_model,
        asr_backend=asr_backend,
        uses_speech=model.uses_speech,
        uses_text=model.uses_text,
        corrector=None,
    )
    if corrector:
        values["corrector"] = {
            "aec_max_len": hparams.get("aec_max_len", 16),
            "vocab_size": model.text_encoder.vocab_size,
            "embed_dim": model.text_encoder.embedding_dim,
            "aec_layers": hparams["aec_layers"],
            "aec_ffn": hparams["aec_ffn"],
        }
    return values


def default_asr_model(hparams):
    """The Whisper model of the training hypotheses cache when it names one, else medium.en."""
    cache = hparams.get("hypotheses_file")
    if cache and os.path.isfile(cache):
        with open(cache, encoding="utf-8") as fin:
            name = json.load(fin).get("model")
        if isinstance(name, str) and name.startswith("openai/whisper"):
            return name
    return DEFAULT_ASR_MODEL


def public_name(value):
    """A name that can be published: a local path becomes its last component; ids stay.

    Example
    -------
    >>> public_name("/home/me/models/tiny-whisper/"), public_name("facebook/hubert-base-ls960")
    ('tiny-whisper', 'facebook/hubert-base-ls960')
    >>> public_name(None)
    '?'
    """
    if value is None:
        return "?"
    text = str(value)
    if os.path.isabs(text) or text.startswith(("./", "../", "~")) or os.path.exists(text):
        return Path(text.rstrip("/\\")).name or text
    return text


def _corpus_name(hparams):
    folder = str(hparams.get("data_folder") or "")
    for name in ("IEMOCAP", "MELD"):
        if name.lower() in folder.lower():
            return name
    return public_name(folder) if folder else "unknown"


def _manifest_size(path):
    """Number of utterances in a JSON manifest, None when it cannot be read."""
    if not path or not os.path.isfile(str(path)):
        return None
    try:
        with open(path, encoding="utf-8") as fin:
            entries = json.load(fin)
    except (OSError, ValueError):
        return None
    return len(entries) if isinstance(entries, dict) else None


def training_data(hparams):
    """What the model was trained on, from the training YAML and the files it names.

    Returns
    -------
    dict
        ``corpus``, ``data_folder`` (its last component), ``fold``, ``test_split``,
        ``validation``, ``text_source`` (``hypothesis``/``transcript``), ``hypotheses_model``
        and ``hypotheses_wer`` (from the hypothesis cache, when there is one), and
        ``num_train_utterances``/``num_valid_utterances``/``num_test_utterances`` (from the
        manifests, None when they are not readable where the export runs). No local paths.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "train.json").write_text('{"a": {}, "b": {}}')
    >>> _ = (tmp / "hyps.json").write_text('{"model": "openai/whisper-medium.en", "wer": 0.2}')
    >>> data = training_data({"data_folder": "/data/IEMOCAP_full_release", "fold": 2,
    ...                       "train_annotation": str(tmp / "train.json"),
    ...                       "hypotheses_file": str(tmp / "hyps.json")})
    >>> data["corpus"], data["test_split"], data["num_train_utterances"], data["hypotheses_model"]
    ('IEMOCAP', 'Session2', 2, 'openai/whisper-medium.en')
    """
    corpus = _corpus_name(hparams)
    fold = hparams.get("fold")
    if corpus == "IEMOCAP" and fold is not None:
        test_split = f"Session{fold}"
    else:
        test_split = hparams.get("test_split") or "test"
    text_source = hparams.get("text_source") or "hypothesis"
    model = wer = None
    cache = hparams.get("hypotheses_file")
    if text_source != "transcript" and cache and os.path.isfile(str(cache)):
        try:
            with open(cache, encoding="utf-8") as fin:
                data = json.load(fin)
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            model = public_name(data["model"]) if data.get("model") else None
            wer = data.get("wer") if isinstance(data.get("wer"), (int, float)) else None
    return {
        "corpus": corpus,
        "data_folder": public_name(hparams.get("data_folder")),
        "fold": fold,
        "test_split": test_split,
        "validation": hparams.get("validation"),
        "text_source": text_source,
        "hypotheses_model": model,
        "hypotheses_wer": wer,
        "num_train_utterances": _manifest_size(hparams.get("train_annotation")),
        "num_valid_utterances": _manifest_size(hparams.get("valid_annotation")),
        "num_test_utterances": _manifest_size(hparams.get("test_annotation")),
    }


def _text_summary(data):
    if data["text_source"] == "transcript":
        return "human transcripts (`text_source: transcript`)"
    if data["hypotheses_model"] is None:
        return "ASR hypotheses (`text_source: hypothesis`; the hypothesis cache was not found)"
    wer = data["hypotheses_wer"]
    wer = f", WER {100 * wer:.2f} %" if wer is not None else ""
    return f"ASR hypotheses of `{data['hypotheses_model']}`{wer} (`text_source: hypothesis`)"


def _count(value):
    return "unknown" if value is None else str(value)


MODEL_CARD = """\
---
library_name: speechbrain
pipeline_tag: audio-classification
language: en
tags: [speech-emotion-recognition, multimodal, m4ser, speechbrain, $corpus_tag]
---

# M4SER speech emotion recognition ($corpus, test $test_split)

Emotion recognition from speech and its ASR transcript with M4SER (He et al., "M4SER:
Multimodal, Multirepresentation, Multitask, and Multistrategy Learning for Speech Emotion
Recognition"), trained with the `m4ser-speechbrain` plugin for SpeechBrain.

## Training

- Data: $corpus (`$data_name`), fold $fold: tested on $test_split, validation `$validation`.
- Utterances (the run's manifests): $num_train training, $num_valid validation, $num_test test.
- Run: seed $seed, experiment `$experiment`.
- Text: $text.
- Encoders (fine-tuned, stored in `speech_encoder/` and `text_encoder/`): speech
  `$speech_source`, text `$text_source`.
- Configuration: d_model $d_model, modalities `$modalities`, MSR $use_msr, MIR $use_mir,
  AED $use_aed, AEC $use_aec, GAN $use_gan, LCL $use_lcl, $epochs epochs.
- Classes: $classes.
- Checkpoint: `$checkpoint` (validation: $valid_metrics).

## Results

$results

## Use

```bash
pip install m4ser-speechbrain
```

```python
from m4ser_lobes.inference.classifier import M4SERClassifier

classifier = M4SERClassifier.from_hparams(source="$source")
probs, score, index, labels = classifier.classify_file("speech.wav")  # the ASR model runs
probs, score, index, labels = classifier.classify_file("speech.wav", transcript="Oh no.")
$correction_line```

Without a transcript, $asr_description transcribes the audio
(`asr_model` and `asr_backend` in `hyperparams.yaml`; offline, pass a transcript or point
`asr_model` at a local Whisper folder).
Files longer than `window_seconds` are classified as at most `max_windows` windows whose
probabilities are averaged. Many files at once:

```bash
m4ser-classify --model $source audio_folder/ --output predictions.csv
```

## Share

```python
from huggingface_hub import HfApi

HfApi().create_repo("$repo_id", repo_type="model", exist_ok=True)
HfApi().upload_folder(folder_path="<this folder>", repo_id="$repo_id", repo_type="model")
```
"""


def model_card(
    run,
    hparams,
    classes,
    asr_model,
    test_metrics,
    has_corrector,
    repo_id=None,
    asr_backend="transformers",
):
    """README.md of the export: a Hugging Face model card (:data:`MODEL_CARD`), no local paths."""
    data = training_data(hparams)
    meta = run.meta
    if test_metrics and run.is_best:
        results = (
            "| split | WA (%) | UA (%) | W-F1 (%) |\n|---|---|---|---|\n"
            f"| test ({data['test_split']}) | {test_metrics.get('WA')} | "
            f"{test_metrics.get('UA')} | {test_metrics.get('W-F1')} |\n\n"
            "WA = accuracy, UA = mean per-class recall; all metrics in `test_metrics.json`."
        )
    else:
        results = "No test metrics were recorded for this checkpoint."
    correction = (
        '*_, (info,) = classifier.classify_file("speech.wav", correct=True)  # info.corrected\n'
        if has_corrector
        else ""
    )
    bundled = os.path.isdir(str(asr_model))
    asr_description = (
        f"the Whisper model bundled in `asr/` (`{public_name(asr_model)}`, {asr_backend})"
        if bundled
        else f"`{public_name(asr_model)}` ({asr_backend})"
    )
    fields = {
        "corpus": data["corpus"],
        "corpus_tag": data["corpus"].lower(),
        "data_name": data["data_folder"],
        "test_split": data["test_split"],
        "num_train": _count(data["num_train_utterances"]),
        "num_valid": _count(data["num_valid_utterances"]),
        "num_test": _count(data["num_test_utterances"]),
        "text": _text_summary(data),
        "speech_source": public_name(hparams.get("speech_encoder_source")),
        "text_source": public_name(hparams.get("text_encoder_source")),
        "classes": ", ".join(classes),
        "checkpoint": run.checkpoint.name,
        "valid_metrics": ", ".join(f"{k} {meta[k]}" for k in ("WA", "UA", "W-F1") if k in meta)
        or "not recorded",
        "results": results,
        "source": repo_id or "<this folder or org/name>",
        "repo_id": repo_id or "org/name",
        "correction_line": correction,
        "asr_description": asr_description,
        "epochs": hparams.get("number_of_epochs", "?"),
        "experiment": hparams.get("experiment_name", "?"),
    }
    for key in (
        "fold",
        "validation",
        "seed",
        "d_model",
        "modalities",
        "use_msr",
        "use_mir",
        "use_aed",
        "use_aec",
        "use_gan",
        "use_lcl",
    ):
        fields[key] = hparams.get(key, "?")
    return string.Template(MODEL_CARD).substitute(fields)


def publish(tmp, out, overwrite=False):
    """Move a finished folder ``tmp`` to ``out``; an existing ``out`` only goes with ``overwrite``.

    The old folder is renamed aside first and deleted last, so ``out`` is at every moment either
    the old export or the new one.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> for name in ("new", "newer"):
    ...     (root / name).mkdir(); _ = (root / name / "f").write_text(name)
    >>> publish(root / "new", root / "out")
    >>> publish(root / "newer", root / "out")
    Traceback (most recent call last):
    ...
    FileExistsError: .../out exists; pass --overwrite (overwrite=True) to replace it
    >>> publish(root / "newer", root / "out", overwrite=True)
    >>> (root / "out" / "f").read_text(), sorted(p.name for p in root.iterdir())
    ('newer', ['out'])
    """
    tmp, out = Path(tmp), Path(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    if not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")
    aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    os.replace(out, aside / out.name)
    os.replace(tmp, out)
    shutil.rmtree(aside)


def _write_folder(folder, run, hparams, model, args):
    """Write every file of the export into ``folder``; returns the inference YAML values."""
    inference_state, corrector_state = split_state_dict(model)
    with_corrector = (
        bool(corrector_state)
        and model.aed_head is not None
        and model.aec_decoder is not None
        and args["corrector"]
    )
    asr_model = args["asr_model"] or default_asr_model(hparams)
    asr_backend = args.get("asr_backend") or "transformers"
    asr_field = asr_model
    if os.path.isdir(asr_model):  # a local ASR model travels with the export
        shutil.copytree(asr_model, folder / "asr")
        asr_field = "!ref <pretrained_path>/asr"
    elif os.path.isabs(asr_model) or asr_model.startswith(("./", "../", "~")):
        raise FileNotFoundError(
            f"--asr-model {asr_model}: no such folder; give a local Whisper folder or a Hub id "
            "such as openai/whisper-medium.en"
        )
    if model.uses_speech:
        encoder = model.speech_encoder
        encoder.model.save_pretrained(folder / "speech_encoder")
        encoder.feature_extractor.save_pretrained(folder / "speech_encoder")
    if model.uses_text:
        encoder = model.text_encoder
        encoder.model.save_pretrained(folder / "text_encoder")
        encoder.tokenizer.save_pretrained(folder / "text_encoder")
    torch.save(inference_state, folder / "model.ckpt")
    if with_corrector:
        torch.save(corrector_state, folder / CORRECTOR_FILE)
    shutil.copyfile(run.label_encoder, folder / "label_encoder.txt")
    values = inference_values(
        hparams,
        model,
        asr_field,
        args["window_seconds"],
        args["max_windows"],
        args["batch_size"],
        with_corrector,
        asr_backend,
    )
    atomic_write_text(folder / "hyperparams.yaml", render_inference_yaml(values))
    metrics_file = run.output_folder / "test_metrics.json"
    test_metrics = None
    if metrics_file.is_file() and run.is_best:
        shutil.copyfile(metrics_file, folder / "test_metrics.json")
        with open(metrics_file, encoding="utf-8") as fin:
            test_metrics = json.load(fin)
    from speechbrain.dataio.encoder import CategoricalEncoder

    labels = CategoricalEncoder()
    labels.load(run.label_encoder)
    labels.expect_len(hparams["num_emotions"])
    classes = [labels.decode_ndim(i) for i in range(len(labels))]
    card = model_card(
        run, hparams, classes, asr_model, test_metrics, with_corrector, args["repo_id"], asr_backend
    )
    atomic_write_text(folder / "README.md", card)
    atomic_write_json(
        folder / "export_info.json",
        {
            "checkpoint": run.checkpoint.name,
            "best_checkpoint": run.is_best,
            "classes": classes,
            "asr_model": "asr" if os.path.isdir(asr_model) else asr_model,
            "asr_model_origin": public_name(asr_model),
            "asr_backend": asr_backend,
            "has_corrector": with_corrector,
            "training_data": training_data(hparams),
        },
    )
    return values


def verify_export(folder, model, atol=1e-5):
    """Load ``folder`` with ``M4SERClassifier`` and compare it with the trained ``model``.

    Checks that every inference parameter (backbones included) is identical, that AED, AEC and
    the discriminator are absent, that ``corrector.ckpt`` holds the trained AED/AEC weights, and
    that a random batch gives the same logits.
    """
    from m4ser_lobes.inference.classifier import M4SERClassifier

    classifier = M4SERClassifier.from_hparams(source=str(folder), run_opts={"device": "cpu"})
    loaded = classifier.model
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(CORRECTOR_PREFIXES)}
    got = loaded.state_dict()
    if sorted(got) != sorted(expected):
        raise RuntimeError(
            f"export check failed: parameter names differ: {sorted(set(got) ^ set(expected))[:5]}"
        )
    different = [k for k in expected if not torch.equal(got[k].cpu(), expected[k].cpu())]
    if different:
        raise RuntimeError(f"export check failed: weights differ for {different[:5]}")
    if classifier.hparams.has_corrector:
        corrector = classifier.load_corrector().state_dict()
        trained = {k: v for k, v in model.state_dict().items() if k.startswith(CORRECTOR_PREFIXES)}
        if sorted(corrector) != sorted(trained) or any(
            not torch.equal(corrector[k].cpu(), trained[k].cpu()) for k in trained
        ):
            raise RuntimeError(
                "export check failed: corrector.ckpt differs from the trained AED/AEC"
            )
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(2, 16000, generator=generator)
    wav_lens = torch.tensor([1.0, 0.75])
    ids = pad = None
    if loaded.uses_text:
        ids, pad = classifier.encode_texts(["hello there", "no"])
    with torch.no_grad():
        want = model(wavs, wav_lens, ids, pad).logits
        have = loaded(wavs, wav_lens, ids, pad).logits
    if not torch.allclose(want, have, atol=atol, rtol=0):
        raise RuntimeError(
            f"export check failed: logits differ by {float((want - have).abs().max()):.2e}"
        )


def _make_shareable(folder):
    """Ordinary permissions (mkdtemp/mkstemp create owner-only ones), the umask respected."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


def export_model(
    checkpoint,
    out,
    hparams_file=None,
    label_encoder=None,
    asr_model=None,
    repo_id=None,
    window_seconds=None,
    max_windows=8,
    batch_size=8,
    corrector=True,
    overwrite=False,
    verify=True,
    asr_backend="transformers",
):
    """Export a training run's checkpoint as an inference folder (module docstring).

    Arguments
    ---------
    checkpoint : str or Path
        Training output folder, its ``save/`` folder, or a ``CKPT+...`` folder.
    out : str or Path
        Export folder (must not exist unless ``overwrite``).
    hparams_file, label_encoder : str or Path, optional
        Default ``<output_folder>/hyperparams.yaml`` and ``<save_folder>/label_encoder.txt``.
    asr_model : str, optional
        Whisper id or local folder (copied into the export) for inputs without a transcript;
        default: the model of the training hypotheses cache if it is a Whisper id, else
        ``openai/whisper-medium.en``.
    repo_id : str, optional
        Hub repo id, used in the model card's snippets.
    window_seconds : float, optional
        Long-audio window; default the training ``max_audio_seconds`` (20 s without a crop).
    max_windows, batch_size : int
        Long-audio cap and windows per forward pass.
    corrector : bool
        Export AED + AEC as ``corrector.ckpt`` (when the model has both).
    overwrite : bool
        Replace an existing ``out``.
    verify : bool
        Load the export back and compare it with the trained model before publishing it.
    asr_backend : str
        ``transformers`` or ``faster-whisper`` (then ``asr_model`` is a CTranslate2 folder, a
        faster-whisper size or an ``openai/whisper-*`` id).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")
    run = locate_run(checkpoint, hparams_file, label_encoder)
    logger.info("Exporting %s (best UA: %s) to %s", run.checkpoint, run.is_best, out)
    hparams, model = load_trained_model(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        _write_folder(
            tmp,
            run,
            hparams,
            model,
            {
                "asr_model": asr_model,
                "repo_id": repo_id,
                "window_seconds": window_seconds,
                "max_windows": max_windows,
                "batch_size": batch_size,
                "corrector": corrector,
                "asr_backend": asr_backend,
            },
        )
        if verify:
            verify_export(tmp, model)
        _make_shareable(tmp)
        publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Exported to %s", out)
    return out


def build_parser():
    """The ``m4ser-export`` argument parser."""
    from m4ser_lobes.text.asr import BACKENDS
    from m4ser_lobes.inference.classify import HelpFormatter, cli_prog

    parser = argparse.ArgumentParser(
        prog=cli_prog("m4ser-export", "m4ser_lobes.inference.export"),
        formatter_class=HelpFormatter,
        description="Export a trained M4SER checkpoint as a self-contained inference folder "
        "(loadable with M4SERClassifier.from_hparams, ready for the Hugging Face Hub).",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="training output folder (best-UA checkpoint), its save/ folder, or a CKPT+... folder",
    )
    parser.add_argument("--out", required=True, help="export folder to write")
    parser.add_argument(
        "--hparams", help="training YAML (default: <output_folder>/hyperparams.yaml)"
    )
    parser.add_argument(
        "--label-encoder", help="label encoder file (default: <save_folder>/label_encoder.txt)"
    )
    parser.add_argument(
        "--asr-model",
        help="Whisper id or local folder (copied into the export) for inputs without a "
        f"transcript (default: the training cache's Whisper model, else {DEFAULT_ASR_MODEL})",
    )
    parser.add_argument(
        "--asr-backend",
        choices=BACKENDS,
        default="transformers",
        help="ASR implementation the export uses (faster-whisper: --asr-model is a CTranslate2 "
        "folder, a size such as large-v2, or an openai/whisper-* id)",
    )
    parser.add_argument(
        "--repo-id", help="Hugging Face repo id for the model card's snippets (default: none)"
    )
    parser.add_argument(
        "--window-seconds",
        type=float,
        help="long-audio window (default: the training max_audio_seconds)",
    )
    parser.add_argument("--max-windows", type=int, default=8, help="long-audio window cap")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--no-corrector", action="store_true", help="leave AED/AEC out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-verify", action="store_true", help="skip loading the export back")
    return parser


def main(argv=None):
    """Command line: ``m4ser-export --checkpoint RUN --out DIR``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        export_model(
            args.checkpoint,
            args.out,
            args.hparams,
            args.label_encoder,
            args.asr_model,
            args.repo_id,
            args.window_seconds,
            args.max_windows,
            args.batch_size,
            corrector=not args.no_corrector,
            overwrite=args.overwrite,
            verify=not args.no_verify,
            asr_backend=args.asr_backend,
        )
    except (FileExistsError, FileNotFoundError, KeyError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
