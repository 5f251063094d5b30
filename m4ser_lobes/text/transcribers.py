"""Whisper transcribers: long audio cut at quiet points, pieces decoded in batches.

M4SER's text branch reads ASR hypotheses (docs/design.md §7): the paper uses
``openai/whisper-medium.en`` for IEMOCAP (WER 20.48 %) and ``openai/whisper-large-v2`` for MELD
(37.87 %). Two backends transcribe the same way and give the same texts format (:data:`BACKENDS`,
:func:`make_transcriber`): ``transformers`` (:class:`WhisperTranscriber`, batched ``generate``;
the default) and ``faster-whisper`` (:class:`FasterWhisperTranscriber`, CTranslate2; several
times faster, for MELD's 13.7k clips through large-v2). The latter is optional (the
``faster-whisper`` extra: ``pip install -e ".[faster-whisper]"`` in the project's source tree,
:func:`m4ser_lobes.install_hint`); it takes a CTranslate2 model folder, a faster-whisper size
(``large-v2``) or an ``openai/whisper-*`` id, which is mapped to that size.

A transcriber is a callable ``list of [L] 16 kHz arrays -> list of str``; the hypothesis cache
(:mod:`m4ser_lobes.text.hypotheses`) and the classifier (:mod:`m4ser_lobes.inference.
classifier`) run one.

Example
-------
>>> BACKENDS, faster_whisper_model_name("openai/whisper-medium.en")
(('transformers', 'faster-whisper'), 'medium.en')
>>> [len(p) for p in split_long_audio(np.zeros(70 * SAMPLE_RATE, "float32"))]  # <= 30 s each
[479840, 479840, 160320]
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np

from m4ser_lobes.data.audio import SAMPLE_RATE

#: ASR implementations (``--backend``; ``asr_backend`` of an exported model).
BACKENDS = ("transformers", "faster-whisper")
DEFAULT_BACKEND = "transformers"

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "split_long_audio",
    "ChunkedTranscriber",
    "WhisperTranscriber",
    "faster_whisper_model_name",
    "FasterWhisperTranscriber",
    "make_transcriber",
    "asr_throughput",
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

    A subclass calls ``super().__init__`` with the options both backends take and implements
    ``_generate(pieces)`` (pieces of at most ``chunk_seconds`` -> one stripped text each).

    Arguments
    ---------
    model_id : str
        The model, as the backend names it; kept as ``model_id``.
    device : str, optional
        Default: ``"cuda"`` when available, else ``"cpu"`` (kept as ``device``).
    fp16 : bool, optional
        Half precision; default True on CUDA (kept as ``fp16``).
    batch_size : int
        Pieces per ``_generate`` call.
    chunk_seconds : float
        Longer audio is split (:func:`split_long_audio`), at most 30 s (Whisper's window).
    """

    def __init__(self, model_id, device=None, fp16=None, batch_size=8, chunk_seconds=30.0):
        import torch

        if not 0 < chunk_seconds <= 30:
            raise ValueError(
                f"chunk_seconds must be in (0, 30] (Whisper's window), got {chunk_seconds}"
            )
        self.model_id = model_id
        self.device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        on_cuda = self.device.partition(":")[0] == "cuda"
        self.fp16 = on_cuda if fp16 is None else bool(fp16)
        self.batch_size = batch_size
        self.chunk_seconds = chunk_seconds
        self.num_generate_calls = 0  # _generate calls and pieces decoded, for tests and benchmarks
        self.num_pieces = 0

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
            batch_texts = self._generate(batch)
            self.num_generate_calls += 1
            self.num_pieces += len(batch)
            for owner, text in zip(owners[start : start + self.batch_size], batch_texts):
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
    >>> from m4ser_lobes.testing.models import save_tiny_whisper
    >>> asr = WhisperTranscriber(str(save_tiny_whisper(getfixture("tmp_path"))), chunk_seconds=1)
    >>> texts = asr([np.zeros(4000, "float32"), np.zeros(40000, "float32")])
    >>> len(texts), asr.num_generate_calls, asr.num_pieces  # 1 + 3 pieces in one batch
    (2, 1, 4)
    """

    def __init__(self, model_id, device=None, fp16=None, batch_size=8, chunk_seconds=30.0,
                 language="en", num_beams=1, max_new_tokens=None):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        super().__init__(model_id, device, fp16, batch_size, chunk_seconds)
        self.device = torch.device(self.device)
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.processor = WhisperProcessor.from_pretrained(model_id)
        self.model = WhisperForConditionalGeneration.from_pretrained(model_id)
        self.model.to(self.device, self.dtype).eval()
        self.generate_kwargs = {"num_beams": num_beams}
        if max_new_tokens is not None:
            self.generate_kwargs["max_new_tokens"] = max_new_tokens
        if language and getattr(self.model.generation_config, "is_multilingual", False):
            self.generate_kwargs.update(language=language, task="transcribe")

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
        return [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]


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

    Optional dependency: the ``faster-whisper`` extra (:func:`m4ser_lobes.install_hint`).
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

    def __init__(self, model_id, device=None, fp16=None, batch_size=8, chunk_seconds=30.0,
                 language="en", num_beams=1, max_new_tokens=None, compute_type=None,
                 cpu_threads=0):
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            from m4ser_lobes import install_hint

            raise ImportError(
                "the faster-whisper ASR backend needs the faster-whisper package: `pip install "
                f"faster-whisper`, or {install_hint('faster-whisper')}; or use --backend "
                "transformers"
            ) from err
        super().__init__(model_id, device, fp16, batch_size, chunk_seconds)
        kind, _, index = self.device.partition(":")
        self.compute_type = compute_type or ("float16" if self.fp16 else "float32")
        self.model = WhisperModel(
            faster_whisper_model_name(model_id),
            device=kind,
            device_index=int(index or 0),
            compute_type=self.compute_type,
            cpu_threads=cpu_threads,
        )
        self.language = language if self.model.model.is_multilingual else "en"
        self.options = {"beam_size": num_beams, "max_new_tokens": max_new_tokens}

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
    >>> from m4ser_lobes.testing.models import save_tiny_whisper
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
