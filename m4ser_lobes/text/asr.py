"""ASR hypotheses for M4SER, computed once with Whisper and cached (design §7).

M4SER's text branch reads ASR hypotheses: the paper uses ``openai/whisper-medium.en`` for IEMOCAP
(WER 20.48 %) and ``openai/whisper-large-v2`` for MELD (37.87 %). Training never runs ASR: this
module transcribes every utterance of the manifests once and writes a JSON cache
(docs/CONTRACTS.md)::

    {"model": "openai/whisper-medium.en", "wer": 0.2048,
     "wer_per_split": {"Session1": 0.19}, "num_utterances": 5531,
     "hypotheses": {"Ses01F_impro01_F000": "excuse me", ...}}

The cache is written atomically every few batches, so an interrupted run resumes where it stopped
(cached ids are skipped). Hypotheses from another ASR (or a paper's release) can be supplied in the
same format; only ``hypotheses`` is required, and running this command on such a cache only fills
in the WER. WER is computed with jiwer on normalised text (:func:`m4ser_lobes.text.alignment.
normalize_text`), overall and per ``session`` of the manifests (IEMOCAP session / MELD split).

Two backends write the same cache (:data:`BACKENDS`, :func:`make_transcriber`):
``transformers`` (:class:`WhisperTranscriber`, batched ``generate``; the default) and
``faster-whisper`` (:class:`FasterWhisperTranscriber`, CTranslate2; several times faster, for
MELD's 13.7k clips through large-v2). The latter is optional: ``pip install
m4ser-speechbrain[faster-whisper]``; it takes a CTranslate2 model folder, a faster-whisper size
(``large-v2``) or an ``openai/whisper-*`` id, which is mapped to that size.

Command line (``m4ser-asr``, or ``python -m m4ser_lobes.text.asr``)::

    m4ser-asr --manifest train.json valid.json test.json \\
        --cache hyps.json --model openai/whisper-medium.en [--backend faster-whisper]

Example
-------
>>> import numpy as np, soundfile as sf
>>> from m4ser_lobes.utils.testing import save_tiny_whisper
>>> tmp = getfixture("tmp_path")
>>> whisper = save_tiny_whisper(tmp / "whisper", ["hello", "world"])
>>> sf.write(tmp / "a.wav", np.zeros(8000, dtype="float32"), 16000)
>>> manifest = tmp / "m.json"
>>> _ = manifest.write_text(json.dumps({"a": {"wav": str(tmp / "a.wav"), "transcript": "Hello.",
...                                          "session": "Session1"}}))
>>> cache = transcribe_manifest([manifest], tmp / "hyps.json", str(whisper), progress=False,
...                             verbose=False)
>>> sorted(cache), list(cache["hypotheses"])
(['hypotheses', 'model', 'num_utterances', 'wer', 'wer_per_split'], ['a'])
>>> load_hypotheses(tmp / "hyps.json").keys()
dict_keys(['a'])
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from m4ser_lobes.text.alignment import word_error_rate
from m4ser_lobes.data.audio import SAMPLE_RATE, AudioError, load_audio
from m4ser_lobes.utils.fileio import atomic_write_json, load_yaml_values

logger = logging.getLogger(__name__)

CACHE_FIELDS = ("model", "wer", "wer_per_split", "num_utterances", "hypotheses")
#: ASR implementations (``--backend``; ``asr_backend`` of an exported model).
BACKENDS = ("transformers", "faster-whisper")
DEFAULT_BACKEND = "transformers"

__all__ = [
    "SAMPLE_RATE",
    "split_long_audio",
    "BACKENDS",
    "WhisperTranscriber",
    "FasterWhisperTranscriber",
    "make_transcriber",
    "asr_throughput",
    "load_manifests",
    "load_cache",
    "load_hypotheses",
    "word_error_rate",
    "corpus_wer",
    "transcribe_manifest",
    "main",
]


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


def split_long_audio(audio, chunk_seconds=30.0, sample_rate=SAMPLE_RATE, search_seconds=None):
    """Split audio into pieces of at most ``chunk_seconds``, cutting at the quietest point.

    Each cut is placed at the lowest-energy 20 ms frame in the last ``search_seconds`` (default:
    a fifth of the chunk) before the limit, so that words are rarely cut in half.

    Arguments
    ---------
    audio : numpy.ndarray
        [L] samples.
    chunk_seconds : float
        Longest piece (Whisper's window is 30 s).
    sample_rate : int
    search_seconds : float, optional
        Width of the window searched for a quiet cut point.

    Returns
    -------
    list of numpy.ndarray
        Consecutive pieces whose concatenation is ``audio``.

    Example
    -------
    >>> audio = np.ones(50, dtype="float32"); audio[22] = 0.0
    >>> [len(p) for p in split_long_audio(audio, chunk_seconds=25, sample_rate=1)]
    [22, 24, 4]
    """
    limit = int(chunk_seconds * sample_rate)
    if limit < 1:
        raise ValueError(f"chunk_seconds * sample_rate must be >= 1 sample, got {limit}")
    search = int((chunk_seconds / 5 if search_seconds is None else search_seconds) * sample_rate)
    frame = max(1, sample_rate // 50)
    pieces, start = [], 0
    while len(audio) - start > limit:
        end = start + limit
        lo = max(start + 1, end - search)
        cut = end
        if end - lo >= frame:
            energy = np.convolve(audio[lo:end] ** 2, np.ones(frame), mode="valid")
            quietest = len(energy) - 1 - int(np.argmin(energy[::-1]))  # the latest on ties
            cut = lo + quietest + frame // 2
        pieces.append(audio[start:cut])
        start = cut
    pieces.append(audio[start:])
    return pieces


# --------------------------------------------------------------------------------------------
# Whisper
# --------------------------------------------------------------------------------------------


class ChunkedTranscriber(ABC):
    """What both backends share: long audio split at quiet points, pieces decoded in batches.

    A subclass sets ``batch_size`` and ``chunk_seconds`` and implements ``_generate(pieces)``
    (pieces of at most ``chunk_seconds`` -> one stripped text each).
    """

    batch_size = 8
    chunk_seconds = 30.0

    @abstractmethod
    def _generate(self, pieces):
        """Texts of pieces of at most ``chunk_seconds``: [N] arrays -> N stripped strings."""

    def __call__(self, waveforms):
        """Transcribe 16 kHz mono waveforms.

        Arguments
        ---------
        waveforms : list of numpy.ndarray
            [L_i] float32 samples at 16 kHz.

        Returns
        -------
        list of str
            One raw (not normalised) hypothesis per waveform.
        """
        pieces, owners = [], []
        for index, wav in enumerate(waveforms):
            for piece in split_long_audio(wav, self.chunk_seconds):
                if len(piece):
                    pieces.append(piece)
                    owners.append(index)
        texts = [[] for _ in waveforms]
        for start in range(0, len(pieces), self.batch_size):
            batch = pieces[start : start + self.batch_size]
            for owner, text in zip(owners[start : start + self.batch_size], self._generate(batch)):
                if text:
                    texts[owner].append(text)
        return [" ".join(parts) for parts in texts]


class WhisperTranscriber(ChunkedTranscriber):
    """Batched Whisper transcription with ``transformers`` (fp16 on CUDA, long audio chunked).

    Arguments
    ---------
    model_id : str
        Hub id or local folder (``openai/whisper-medium.en``, ``openai/whisper-large-v2``).
    device : str, optional
        Default: ``"cuda"`` when available, else ``"cpu"``.
    fp16 : bool, optional
        Half precision; default True on CUDA.
    batch_size : int
        Pieces (≤ ``chunk_seconds``) per ``generate`` call.
    chunk_seconds : float
        Longer audio is split (:func:`split_long_audio`) and the pieces' texts joined.
    language : str, optional
        Passed to multilingual models only (``"en"`` by default); ignored by ``*.en`` models.
    num_beams : int
        Beam size of ``generate`` (1: greedy).
    max_new_tokens : int, optional
        Override the model's generation length.

    Example
    -------
    >>> from m4ser_lobes.utils.testing import save_tiny_whisper
    >>> asr = WhisperTranscriber(str(save_tiny_whisper(getfixture("tmp_path"))), chunk_seconds=1)
    >>> texts = asr([np.zeros(4000, "float32"), np.zeros(40000, "float32")])
    >>> len(texts), asr.num_generate_calls, asr.num_pieces  # 1 + 3 pieces in one batch
    (2, 1, 4)
    """

    def __init__(
        self,
        model_id,
        device=None,
        fp16=None,
        batch_size=8,
        chunk_seconds=30.0,
        language="en",
        num_beams=1,
        max_new_tokens=None,
    ):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        _check_chunk(chunk_seconds)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.fp16 = self.device.type == "cuda" if fp16 is None else bool(fp16)
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.processor = WhisperProcessor.from_pretrained(model_id)
        self.model = WhisperForConditionalGeneration.from_pretrained(model_id)
        self.model.to(self.device, self.dtype).eval()
        self.model_id = model_id
        self.batch_size = batch_size
        self.chunk_seconds = chunk_seconds
        self.generate_kwargs = {"num_beams": num_beams}
        if max_new_tokens is not None:
            self.generate_kwargs["max_new_tokens"] = max_new_tokens
        if language and getattr(self.model.generation_config, "is_multilingual", False):
            self.generate_kwargs.update(language=language, task="transcribe")
        self.num_generate_calls = 0
        self.num_pieces = 0

    def _generate(self, pieces):
        """Texts of pieces of at most 30 s: [N] arrays -> N strings."""
        import torch

        features = self.processor.feature_extractor(
            pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
        )
        with torch.inference_mode():
            ids = self.model.generate(
                input_features=features.input_features.to(self.device, self.dtype),
                attention_mask=features.attention_mask.to(self.device),
                **self.generate_kwargs,
            )
        self.num_generate_calls += 1
        self.num_pieces += len(pieces)
        return [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]


def _check_chunk(chunk_seconds):
    if not 0 < chunk_seconds <= 30:
        raise ValueError(
            f"chunk_seconds must be in (0, 30] (Whisper's window), got {chunk_seconds}"
        )


def faster_whisper_model_name(model_id):
    """The faster-whisper name of a Whisper model: ``openai/whisper-X`` -> ``X``, else unchanged.

    faster-whisper loads CTranslate2 conversions: a local folder, a size name (``large-v2``,
    ``medium.en``), or a converted Hub repo. The ``openai/whisper-*`` ids of the paper (and of
    ``asr_model`` in the YAMLs) are mapped to the size name, which faster-whisper resolves to
    its own conversion of the same weights.

    Example
    -------
    >>> faster_whisper_model_name("openai/whisper-large-v2"), faster_whisper_model_name("tiny.en")
    ('large-v2', 'tiny.en')
    """
    text = str(model_id)
    prefix = "openai/whisper-"
    return text[len(prefix) :] if text.startswith(prefix) else text


class FasterWhisperTranscriber(ChunkedTranscriber):
    """Whisper transcription with faster-whisper (CTranslate2): same interface and texts format.

    Optional dependency: ``pip install m4ser-speechbrain[faster-whisper]`` (``faster-whisper``).
    Decoding matches :class:`WhisperTranscriber`: long audio cut at quiet points into pieces of
    at most ``chunk_seconds``, no timestamps, no conditioning on previous text, no VAD,
    temperature 0 with ``num_beams`` beams; the texts of a waveform's pieces are joined.

    Arguments
    ---------
    model_id : str
        CTranslate2 model folder, faster-whisper size (``large-v2``) or ``openai/whisper-*`` id
        (see :func:`faster_whisper_model_name`); sizes and ids are fetched from the Hub unless
        offline.
    device : str, optional
        ``cpu``, ``cuda`` or ``cuda:N``; default CUDA when available.
    fp16 : bool, optional
        float16 compute; default True on CUDA (float32 on CPU).
    batch_size : int
        Pieces per group (faster-whisper decodes them one by one).
    chunk_seconds : float
        Longer audio is split (:func:`split_long_audio`).
    language : str, optional
        For multilingual models (``"en"`` by default); ignored by ``*.en`` models.
    num_beams : int
        Beam size (1: greedy).
    max_new_tokens : int, optional
        Generation length cap.
    compute_type : str, optional
        CTranslate2 compute type (``int8``, ``int8_float16`` ...); overrides ``fp16``.
    cpu_threads : int
        CTranslate2 CPU threads (0: its default, ``OMP_NUM_THREADS`` or 4).
    """

    def __init__(
        self,
        model_id,
        device=None,
        fp16=None,
        batch_size=8,
        chunk_seconds=30.0,
        language="en",
        num_beams=1,
        max_new_tokens=None,
        compute_type=None,
        cpu_threads=0,
    ):
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ImportError(
                "the faster-whisper ASR backend needs the faster-whisper package: "
                "`pip install m4ser-speechbrain[faster-whisper]` (or `pip install faster-whisper`),"
                " or use --backend transformers"
            ) from err
        import torch

        _check_chunk(chunk_seconds)
        device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        kind, _, index = device.partition(":")
        fp16 = kind == "cuda" if fp16 is None else bool(fp16)
        self.compute_type = compute_type or ("float16" if fp16 else "float32")
        self.model = WhisperModel(
            faster_whisper_model_name(model_id),
            device=kind,
            device_index=int(index or 0),
            compute_type=self.compute_type,
            cpu_threads=cpu_threads,
        )
        self.model_id = model_id
        self.device = device
        self.batch_size = batch_size
        self.chunk_seconds = chunk_seconds
        self.language = language if self.model.model.is_multilingual else "en"
        self.options = {"beam_size": num_beams, "max_new_tokens": max_new_tokens}
        self.num_generate_calls = 0
        self.num_pieces = 0

    def _generate(self, pieces):
        """Texts of pieces of at most 30 s: [N] arrays -> N strings."""
        texts = []
        for piece in pieces:
            segments, _info = self.model.transcribe(
                np.ascontiguousarray(piece, dtype=np.float32),
                language=self.language,
                task="transcribe",
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
                **self.options,
            )
            texts.append(" ".join(s.text.strip() for s in segments if s.text.strip()))
        self.num_generate_calls += 1
        self.num_pieces += len(pieces)
        return texts


def make_transcriber(backend, model_id, **options):
    """The transcriber of an ASR backend (:data:`BACKENDS`).

    Arguments
    ---------
    backend : str
        ``"transformers"`` or ``"faster-whisper"``.
    model_id : str
        Model id or folder for that backend.
    **options
        ``device fp16 batch_size chunk_seconds language num_beams max_new_tokens`` (both);
        ``compute_type cpu_threads`` (faster-whisper only).

    Returns
    -------
    WhisperTranscriber or FasterWhisperTranscriber

    Example
    -------
    >>> make_transcriber("whisper.cpp", "tiny.en")
    Traceback (most recent call last):
    ...
    ValueError: unknown ASR backend 'whisper.cpp'; choose one of transformers, faster-whisper
    """
    if backend == "transformers":
        return WhisperTranscriber(model_id, **options)
    if backend == "faster-whisper":
        return FasterWhisperTranscriber(model_id, **options)
    raise ValueError(f"unknown ASR backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def asr_throughput(backend, model, wavs, device="cpu", repeats=1, **options):
    """Utterances per second of an ASR backend on ``wavs`` (model loading and a warm-up excluded).

    Arguments
    ---------
    backend : str
        ``"transformers"`` or ``"faster-whisper"``.
    model : str or callable
        Model id/folder for :func:`make_transcriber`, or a transcriber already built.
    wavs : list of numpy.ndarray
        [L_i] 16 kHz waveforms, transcribed ``repeats`` times after one warm-up call on the first.
    device : str
        Where the model runs (ignored for a built transcriber).
    repeats : int
        Timed passes over ``wavs``.
    **options
        More :func:`make_transcriber` options (``batch_size`` ...).

    Returns
    -------
    float
        ``repeats * len(wavs)`` divided by the seconds the timed calls took.

    Example
    -------
    >>> from m4ser_lobes.utils.testing import save_tiny_whisper
    >>> whisper = str(save_tiny_whisper(getfixture("tmp_path")))
    >>> asr_throughput("transformers", whisper, [np.zeros(8000, "float32")] * 2) > 0
    True
    """
    if not wavs or repeats < 1:
        raise ValueError(f"need at least one waveform and repeats >= 1, got {len(wavs)}, {repeats}")
    transcriber = (
        model if callable(model) else make_transcriber(backend, model, device=device, **options)
    )
    transcriber(list(wavs[:1]))  # warm-up: lazy initialisation, caches, kernels
    start = time.perf_counter()
    for _ in range(repeats):
        transcriber(list(wavs))
    return repeats * len(wavs) / max(time.perf_counter() - start, 1e-9)


# --------------------------------------------------------------------------------------------
# Manifests and cache
# --------------------------------------------------------------------------------------------


def load_manifests(manifest_paths, data_root=None):
    """Read SpeechBrain JSON manifests into one dict keyed by utterance id.

    An id found in several manifests (fold folders repeat utterances) must point at the same wav.

    Arguments
    ---------
    manifest_paths : list of str or Path
    data_root : str, optional
        Replaces ``{data_root}`` in ``wav`` paths (SpeechBrain convention).

    Returns
    -------
    dict
        utterance id -> entry (with ``wav`` resolved).
    """
    entries = {}
    for path in manifest_paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"manifest {path} does not exist; run the data preparation first"
            )
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict):
            raise ValueError(f"manifest {path} must be a JSON object keyed by utterance id")
        for utt_id, entry in manifest.items():
            if not isinstance(entry, dict) or not entry.get("wav"):
                raise ValueError(f"manifest {path}: entry {utt_id!r} has no 'wav' field")
            entry = dict(entry)
            if data_root is not None:
                entry["wav"] = entry["wav"].replace("{data_root}", str(data_root))
            if utt_id in entries and entries[utt_id]["wav"] != entry["wav"]:
                raise ValueError(
                    f"manifest {path}: utterance {utt_id!r} points at {entry['wav']} but an "
                    f"earlier manifest gives {entries[utt_id]['wav']}; utterance ids must be unique"
                )
            entries.setdefault(utt_id, entry)
    return entries


def _cache_error(path, problem):
    return ValueError(
        f"hypothesis cache {path}: {problem}. Expected a JSON object "
        '{"model": ..., "hypotheses": {"<utterance id>": "<text>", ...}} (only "hypotheses" is '
        "required); fix the file, or delete it and run `python -m m4ser_lobes.text.asr --manifest ... "
        f"--cache {path} --model <whisper id>` to recompute it."
    )


def load_cache(cache_path):
    """Read and validate a hypothesis cache; return the whole JSON object.

    Arguments
    ---------
    cache_path : str or Path

    Returns
    -------
    dict
        With at least ``hypotheses`` (utterance id -> str).
    """
    path = Path(cache_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"hypothesis cache {path} does not exist; create it with `python -m m4ser_lobes.text.asr "
            f"--manifest <manifests> --cache {path} --model openai/whisper-medium.en`, or supply "
            'your own hypotheses as {"hypotheses": {"<utterance id>": "<text>"}}'
        )
    try:
        with open(path, encoding="utf-8") as f:
            cache = json.load(f)
    except json.JSONDecodeError as err:
        raise _cache_error(path, f"not valid JSON ({err})") from err
    if not isinstance(cache, dict):
        raise _cache_error(path, f"the top level is a {type(cache).__name__}, not an object")
    if "hypotheses" not in cache:
        if (
            cache
            and not set(cache) & set(CACHE_FIELDS)
            and all(isinstance(v, str) for v in cache.values())
        ):
            raise _cache_error(
                path, 'it looks like a flat id -> text mapping; wrap it as {"hypotheses": {...}}'
            )
        raise _cache_error(path, 'the key "hypotheses" is missing')
    hyps = cache["hypotheses"]
    if not isinstance(hyps, dict):
        raise _cache_error(path, f'"hypotheses" is a {type(hyps).__name__}, not an object')
    bad = [k for k, v in hyps.items() if not isinstance(v, str)]
    if bad:
        raise _cache_error(
            path,
            f"{len(bad)} hypotheses are not strings (first: {bad[0]!r} -> {hyps[bad[0]]!r}); "
            'use "" for an empty hypothesis',
        )
    return cache


def load_hypotheses(cache_path):
    """Read a hypothesis cache and return utterance id -> raw hypothesis text.

    Arguments
    ---------
    cache_path : str or Path

    Returns
    -------
    dict of str to str

    Example
    -------
    >>> p = getfixture("tmp_path") / "h.json"
    >>> _ = p.write_text('{"hypotheses": {"u1": "excuse me"}}')
    >>> load_hypotheses(p)
    {'u1': 'excuse me'}
    >>> _ = p.write_text('{"u1": "excuse me"}')
    >>> load_hypotheses(p)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: hypothesis cache ...: it looks like a flat id -> text mapping; ...
    """
    return dict(load_cache(cache_path)["hypotheses"])


def corpus_wer(hypotheses, entries):
    """Overall and per-``session`` WER of the entries that have both a transcript and a hypothesis.

    Arguments
    ---------
    hypotheses : dict of str to str
    entries : dict
        Manifest entries (``transcript``, ``session``).

    Returns
    -------
    tuple
        ``(wer, wer_per_split)``; None / {} when nothing can be scored.

    Example
    -------
    >>> entries = {"a": {"transcript": "hi there", "session": "S1"},
    ...            "b": {"transcript": "yes", "session": "S2"}}
    >>> corpus_wer({"a": "hi there", "b": "no"}, entries)
    (0.3333333333333333, {'S1': 0.0, 'S2': 1.0})
    """
    by_split, pairs = {}, []
    for utt_id, entry in entries.items():
        if utt_id in hypotheses and entry.get("transcript") is not None:
            pair = (hypotheses[utt_id], entry["transcript"])
            pairs.append(pair)
            by_split.setdefault(str(entry.get("session", "all")), []).append(pair)
    if not pairs:
        return None, {}
    return word_error_rate(pairs), {s: word_error_rate(p) for s, p in sorted(by_split.items())}


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def _cache_object(model_id, hypotheses, entries=None, failed=None):
    wer, per_split = corpus_wer(hypotheses, entries) if entries is not None else (None, {})
    cache = {
        "model": model_id,
        "wer": wer,
        "wer_per_split": per_split,
        "num_utterances": len(hypotheses),
        "hypotheses": hypotheses,
    }
    if failed:
        cache["failed"] = failed
    return cache


def _existing_cache(cache_path, model_id, overwrite):
    """Hypotheses and model id of an existing cache (empty when absent or overwritten)."""
    path = Path(cache_path)
    if overwrite or not path.exists():
        return {}, None
    cache = load_cache(path)
    cached_model = cache.get("model")
    if cached_model and model_id and cached_model != model_id:
        raise ValueError(
            f"hypothesis cache {path} was made with {cached_model!r}, not {model_id!r}; use "
            "another --cache path, or pass --overwrite to recompute it"
        )
    return dict(cache["hypotheses"]), cached_model


def transcribe_manifest(
    manifest_paths,
    cache_path,
    model_id,
    batch_size=8,
    device=None,
    chunk_seconds=30,
    save_every=10,
    fp16=None,
    language="en",
    num_beams=1,
    max_new_tokens=None,
    overwrite=False,
    data_root=None,
    transcriber=None,
    progress=True,
    verbose=True,
    backend=DEFAULT_BACKEND,
    compute_type=None,
):
    """Transcribe every utterance of the manifests once and write the hypothesis cache.

    Cached ids are skipped (resume); the model is loaded only when something is left to do, so
    running this on a complete or user-supplied cache just (re)computes the WER. The cache is saved
    atomically every ``save_every`` batches and at the end. Unreadable audio is logged, listed
    under ``failed`` in the cache, and retried by the next run.

    Arguments
    ---------
    manifest_paths : list of str or Path
        SpeechBrain JSON manifests (``wav``, ``transcript``, ``session``).
    cache_path : str or Path
        The JSON cache (docs/CONTRACTS.md); created or completed.
    model_id : str or None
        Whisper hub id or local folder (for ``faster-whisper``: a CTranslate2 folder, a size or an
        ``openai/whisper-*`` id); recorded in the cache. None keeps the cache's model and is
        allowed only when nothing is left to transcribe.
    batch_size : int
        Utterances per batch (and audio pieces per ``generate`` call).
    device : str, optional
        Default ``cuda`` when available.
    chunk_seconds : float
        Longer audio is split into pieces of at most this length and the texts joined.
    save_every : int
        Save the cache every this many batches.
    fp16 : bool, optional
        Default: True on CUDA.
    language : str, optional
        Language for multilingual Whisper models.
    num_beams : int
        Beam size.
    max_new_tokens : int, optional
        Generation length override.
    overwrite : bool
        Ignore an existing cache.
    data_root : str, optional
        Replaces ``{data_root}`` in ``wav`` paths.
    transcriber : callable, optional
        ``list of [L] arrays -> list of str``; default ``make_transcriber(backend, model_id)``.
    progress : bool
        Show a tqdm progress bar.
    verbose : bool
        Print the WER report.
    backend : str
        ``"transformers"`` (:class:`WhisperTranscriber`) or ``"faster-whisper"``
        (:class:`FasterWhisperTranscriber`); both write the same cache.
    compute_type : str, optional
        CTranslate2 compute type (faster-whisper only; default from ``fp16``).

    Returns
    -------
    dict
        The cache object as written.
    """
    from tqdm.auto import tqdm

    if batch_size < 1 or save_every < 1:
        raise ValueError(f"batch_size and save_every must be >= 1, got {batch_size}, {save_every}")
    entries = load_manifests(manifest_paths, data_root=data_root)
    hypotheses, cached_model = _existing_cache(cache_path, model_id, overwrite)
    model_id = model_id or cached_model
    todo = [utt_id for utt_id in entries if utt_id not in hypotheses]
    logger.info("%d utterances, %d to transcribe", len(entries), len(todo))
    failed = {}
    if todo and transcriber is None:
        if not model_id:
            raise ValueError(
                f"{len(todo)} utterances of {[str(p) for p in manifest_paths]} are not in "
                f"{cache_path}; give a Whisper model id (--model) to transcribe them"
            )
        extra = {"compute_type": compute_type} if backend == "faster-whisper" else {}
        if compute_type is not None and not extra:
            raise ValueError("compute_type is an option of the faster-whisper backend only")
        transcriber = make_transcriber(
            backend,
            model_id,
            **extra,
            device=device,
            fp16=fp16,
            batch_size=batch_size,
            chunk_seconds=chunk_seconds,
            language=language,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
        )
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    for number, batch in enumerate(
        tqdm(batches, desc="ASR", unit="batch", disable=not progress), 1
    ):
        ids, waveforms = [], []
        for utt_id in batch:
            try:
                waveforms.append(load_audio(entries[utt_id]["wav"]).numpy())
                ids.append(utt_id)
            except AudioError as err:
                logger.warning("skipping %s: %s", utt_id, err)
                failed[utt_id] = str(err)
        if ids:
            hypotheses.update(zip(ids, transcriber(waveforms)))
        if number % save_every == 0:
            atomic_write_json(cache_path, _cache_object(model_id, hypotheses, failed=failed))
    cache = _cache_object(model_id, hypotheses, entries, failed)
    atomic_write_json(cache_path, cache)
    if verbose:
        print(format_wer_report(cache, cache_path))
    return cache


def format_wer_report(cache, cache_path=""):
    """A short WER report of a cache object."""

    def pct(x):
        return (
            "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f} %"
        )

    lines = [f"ASR hypotheses: {cache['num_utterances']} in {cache_path} (model {cache['model']})"]
    lines.append(f"  WER overall       {pct(cache['wer'])}")
    lines += [f"  WER {split:<13} {pct(w)}" for split, w in cache["wer_per_split"].items()]
    if cache.get("failed"):
        lines.append(f"  unreadable audio  {len(cache['failed'])} (see 'failed' in the cache)")
    return "\n".join(lines)


def _model_from_yaml(path, key):
    """Read ``key`` from a (Hyper)PyYAML file without instantiating its ``!new:`` objects."""
    with open(path, encoding="utf-8") as f:
        value = load_yaml_values(f).get(key)
    if not isinstance(value, str):
        raise ValueError(
            f"{path} has no string key {key!r}; add `{key}: openai/whisper-medium.en` or pass --model"
        )
    return value


def build_parser():
    """The ``m4ser-asr`` argument parser."""
    from m4ser_lobes.inference.classify import HelpFormatter, cli_prog

    parser = argparse.ArgumentParser(
        prog=cli_prog("m4ser-asr", "m4ser_lobes.text.asr"),
        formatter_class=HelpFormatter,
        description="Transcribe manifests with Whisper once; write/resume a JSON hypothesis cache "
        "and report WER overall and per session/split.",
    )
    parser.add_argument("--manifest", nargs="+", required=True, help="SpeechBrain JSON manifests")
    parser.add_argument(
        "--cache", required=True, help="hypothesis cache (JSON), created or resumed"
    )
    parser.add_argument(
        "--model",
        help="Whisper id or folder, e.g. openai/whisper-medium.en (IEMOCAP), "
        "openai/whisper-large-v2 (MELD); for --backend faster-whisper also a CTranslate2 folder "
        "or a size (large-v2) (default: the --hparams-key of --hparams)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="ASR implementation; faster-whisper (CTranslate2) is several times faster and needs "
        "`pip install m4ser-speechbrain[faster-whisper]`",
    )
    parser.add_argument(
        "--hparams", help="YAML file to read the model id from (default: none; give --model)"
    )
    parser.add_argument("--hparams-key", default="asr_model", help="key of --hparams")
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)"
    )
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="longer audio is cut at quiet points into pieces of at most this length",
    )
    parser.add_argument("--save-every", type=int, default=10, help="save the cache every N batches")
    parser.add_argument("--no-fp16", action="store_true", help="keep fp32 on CUDA")
    parser.add_argument(
        "--compute-type",
        default=None,
        help="CTranslate2 compute type for --backend faster-whisper, e.g. int8_float16 "
        "(default: float16 on CUDA, float32 on CPU)",
    )
    parser.add_argument("--language", default="en", help="for multilingual models only")
    parser.add_argument("--num-beams", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="generation length cap (default: the model's)",
    )
    parser.add_argument(
        "--data-root", default=None, help="replaces {data_root} in wav paths (default: none)"
    )
    parser.add_argument("--overwrite", action="store_true", help="ignore an existing cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Command-line entry: ``m4ser-asr --manifest ... --cache ... --model ...``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    model_id = args.model or (args.hparams and _model_from_yaml(args.hparams, args.hparams_key))
    if not model_id:
        parser.error("give --model (or --hparams with an asr_model key)")
    if args.compute_type and args.backend != "faster-whisper":
        parser.error("--compute-type is an option of --backend faster-whisper")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    transcribe_manifest(
        args.manifest,
        args.cache,
        model_id,
        batch_size=args.batch_size,
        device=args.device,
        chunk_seconds=args.chunk_seconds,
        save_every=args.save_every,
        fp16=False if args.no_fp16 else None,
        language=args.language,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        overwrite=args.overwrite,
        data_root=args.data_root,
        progress=not args.no_progress,
        backend=args.backend,
        compute_type=args.compute_type,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
