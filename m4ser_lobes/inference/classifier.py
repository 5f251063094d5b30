"""Emotion recognition with a trained, exported M4SER model: ``M4SERClassifier`` (a ``Pretrained``).

Loading (a folder written by ``python -m m4ser_lobes.inference.export``, or its Hugging Face Hub repo)::

    from m4ser_lobes.inference import M4SERClassifier

    classifier = M4SERClassifier.from_hparams(source="exported/m4ser-iemocap-fold1")
    probs, score, index, labels = classifier.classify_file("speech.wav")
    probs, score, index, labels = classifier.classify_file("speech.wav", transcript="I'm fine.")
    info = classifier.transcribe_file("speech.wav", correct=True)
    info.text, info.source, info.corrected      # transcript used, "given"/"asr", AED+AEC correction

The return values of :meth:`M4SERClassifier.classify_batch` and
:meth:`M4SERClassifier.classify_file` follow SpeechBrain's ``EncoderClassifier``:
``(probabilities [B,C], score [B], index [B], labels)`` — with *probabilities* (softmax), not
log-probabilities — whatever the input. The text the model read, and its AED + AEC correction,
come from :meth:`M4SERClassifier.transcribe_file` / :meth:`M4SERClassifier.transcribe_batch`,
one :class:`TranscriptInfo` per utterance. Passing that text back
(``classify_file(path, transcript=info.text)``) classifies without running the ASR again;
``m4ser-classify`` decodes each file once and runs the ASR at most once per file.

What runs (paper §III-I): the speech and text encoders, the fusion and the emotion head. The
modality discriminator is never exported; AED and AEC are built from ``corrector.ckpt`` only the
first time a correction is asked for. Without a transcript the ASR model named by ``asr_model``
in the model's ``hyperparams.yaml`` transcribes the audio, as in training, where the text branch
read Whisper hypotheses: Whisper through ``transformers``, or through faster-whisper
(CTranslate2) with ``asr_backend: faster-whisper``. It is loaded once, at first use
(:meth:`M4SERClassifier.load_asr`); when it cannot be loaded, offline without a cached model for
instance, :class:`ASRUnavailableError` says what to do: give the transcript, or point
``asr_model`` at a local Whisper folder (:meth:`M4SERClassifier.set_asr`, or
``overrides={"asr_model": ...}``). A transcript is given when it is a string, even an empty one
(``""``: the text branch reads an empty text, as for an empty ASR hypothesis in training); only
``None`` asks for the ASR. ``m4ser-classify`` reads an empty cell of its ``--transcripts`` CSV
the same way.

Text goes through the training pipeline's normaliser and tokenizer
(:func:`m4ser_lobes.text.tokens.encode_hypothesis`, capped at ``max_tokens``).

Long audio (:mod:`m4ser_lobes.inference.windows`): a file longer than ``window_seconds`` (the
training crop) is classified as at most ``max_windows`` windows of exactly that length, evenly
spaced from its start to its end, ``batch_size`` at a time, their probabilities averaged; without
a given transcript each window is transcribed separately and the texts are joined. A file no
longer than ``window_seconds`` is classified whole, as the training Brain's test stage crops it.
Padding never changes a prediction:
:meth:`classify_batch` gives each utterance of a padded batch the probabilities it gets alone
(tested to 1e-5, for group-norm speech encoders such as HuBERT/wav2vec2 base too, see
:class:`m4ser_lobes.encoders.SpeechEncoder`), so the Brain's padded test batches, a batch of one
and :meth:`classify_file` agree.

Shape legend: B batch, L samples, N windows, T_t tokens, C classes. Masks: True = padding.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import torch
from speechbrain.inference.interfaces import Pretrained, pretrained_from_hparams
from speechbrain.utils.fetching import FetchConfig

from m4ser_lobes.text.alignment import correct as correct_text
from m4ser_lobes.text.tokens import encode_hypothesis
from m4ser_lobes.text.transcribers import BACKENDS, DEFAULT_BACKEND
from m4ser_lobes.data.audio import AudioError, load_audio

from m4ser_lobes.inference.folder import CORRECTOR_FILE, resolve_source
from m4ser_lobes.inference.windows import split_windows

logger = logging.getLogger(__name__)


__all__ = ["ASRUnavailableError", "M4SERClassifier", "TranscriptInfo"]


class TranscriptInfo(NamedTuple):
    """The text behind one prediction."""

    text: str | None  # raw transcript the text encoder read (None: speech-only model)
    source: str  # "given", "asr" or "unused" (speech-only model)
    corrected: str | None = None  # AED + AEC correction, normalised (when asked for)


class ASRUnavailableError(RuntimeError):
    """The ASR model, needed because a transcript was not given, cannot be loaded."""


def asr_unavailable(model, backend, err):
    """An :class:`ASRUnavailableError` that says why and what to do instead.

    Example
    -------
    >>> err = asr_unavailable("openai/whisper-medium.en", "transformers", OSError("offline"))
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    cannot load the ASR model 'openai/whisper-medium.en' (asr_backend transformers), which
    transcribes audio given without a transcript: OSError: offline.
    Either give the transcript: classify_file(path, transcript="..."),
    classify_batch(wavs, transcripts=[...]), or m4ser-classify --transcripts FILE (CSV id,transcript
    or JSON {id: text}); or point at a local Whisper folder: classifier.set_asr("/path/to/whisper"),
    M4SERClassifier.from_hparams(source, overrides={"asr_model": "/path/to/whisper"}), or
    m4ser-classify --asr-model /path/to/whisper (with --asr-backend faster-whisper for a CTranslate2
    folder).
    """
    reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return ASRUnavailableError(
        f"cannot load the ASR model {str(model)!r} (asr_backend {backend}), which transcribes "
        f"audio given without a transcript: {type(err).__name__}: {reason.rstrip('.')}.\n"
        'Either give the transcript: classify_file(path, transcript="..."), '
        "classify_batch(wavs, transcripts=[...]), or m4ser-classify --transcripts FILE "
        "(CSV id,transcript or JSON {id: text}); or point at a local Whisper folder: "
        'classifier.set_asr("/path/to/whisper"), M4SERClassifier.from_hparams(source, '
        'overrides={"asr_model": "/path/to/whisper"}), or m4ser-classify --asr-model '
        "/path/to/whisper (with --asr-backend faster-whisper for a CTranslate2 folder)."
    )


def _refuse_transcript_flags(method, replacement, flags):
    """``classify_*`` return SpeechBrain's 4-tuple only: point old transcript flags elsewhere.

    Example
    -------
    >>> _refuse_transcript_flags("classify_file", "transcribe_file(path)", {"correct": True})
    Traceback (most recent call last):
    ...
    TypeError: classify_file() got correct=True: it returns (probabilities, score, index, labels)
    only; for the transcript and its correction call classifier.transcribe_file(path) ...
    """
    if flags:
        given = ", ".join(f"{k}={v!r}" for k, v in flags.items())
        raise TypeError(
            f"{method}() got {given}: it returns (probabilities, score, index, labels) only; "
            f"for the transcript and its correction call classifier.{replacement} "
            "(correct=True corrects it), which returns a TranscriptInfo"
        )


@contextmanager
def _attached(model, corrector):
    """Lend the correction heads to the model for one ``correct_transcripts`` call."""
    model.aed_head, model.aec_decoder = corrector.aed_head, corrector.aec_decoder
    try:
        yield model
    finally:
        model.aed_head = model.aec_decoder = None


class M4SERClassifier(Pretrained):
    """Speech emotion recognition from speech and its transcript with a trained M4SER.

    Build it with :meth:`from_hparams` on an export folder or Hub repo (module docstring).
    ``hyperparams.yaml`` (the packaged ``m4ser_lobes/inference/inference.yaml`` as the export
    filled it) provides the ``model`` module, ``label_encoder``, ``sample_rate``,
    ``max_tokens``, ``window_seconds``, ``max_windows``, ``batch_size``, ``asr_model``,
    optionally ``asr_backend`` (``transformers``, the default, or ``faster-whisper``) and, for
    corrections, ``has_corrector``, ``corrector_path``, ``aed_head`` and ``aec_decoder``
    (``!name:`` constructors, not built at load time).

    Transcripts: a given one (a string, even ``""``: the text branch then reads an empty text,
    as for an empty ASR hypothesis in training) is used as is; a missing one (None) is
    transcribed by the ASR model, loaded once at first use or by :meth:`load_asr`, which
    raises :class:`ASRUnavailableError` saying what to do when it cannot be loaded (offline
    without a cached model, for instance). :meth:`set_asr` points at another ASR model.

    Usage (tested in ``tests/integration/test_inference.py`` on a trained tiny model)::

        classifier = M4SERClassifier.from_hparams("exported/m4ser", run_opts={"device": "cuda"})
        probs, score, index, labels = classifier.classify_batch(
            wavs, torch.tensor([1.0, 0.6]), transcripts=["oh no", None])  # None: ASR
        probs.shape, labels   # (torch.Size([2, 4]), ['sad', 'hap'])
    """

    MODULES_NEEDED = ["model"]
    HPARAMS_NEEDED = [
        "label_encoder",
        "sample_rate",
        "max_tokens",
        "window_seconds",
        "max_windows",
        "batch_size",
        "asr_model",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        encoder = self.hparams.label_encoder
        encoder.expect_len(getattr(self.hparams, "num_emotions", len(encoder)))
        self.source = None  # set by from_hparams (for a lazy download of corrector.ckpt)
        self.fetch_config = FetchConfig()
        self.asr = None  # an m4ser_lobes.text.asr transcriber, built at first use (load_asr)
        self.corrector = None  # ModuleDict(aed_head, aec_decoder), built at first use

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", overrides=None, **kwargs):
        """Load an export from a local folder or a Hub repo id (offline once cached).

        Arguments
        ---------
        source : str or Path
            Export folder, or Hub repo id (see :func:`resolve_source`).
        hparams_file : str
            Inference YAML inside ``source``.
        overrides : dict, optional
            YAML overrides, e.g. ``{"window_seconds": 10.0, "asr_model": "openai/whisper-small"}``;
            ``asr_model`` and ``asr_backend`` are applied with :meth:`set_asr` (so they also work
            on exports whose YAML has no ``asr_backend``).
        **kwargs
            Forwarded to ``speechbrain.inference.interfaces.pretrained_from_hparams`` (``savedir``,
            ``fetch_config``, ``local_strategy``) and the constructor (``run_opts``).

        Returns
        -------
        M4SERClassifier
        """
        fetch_config = kwargs.get("fetch_config") or FetchConfig()
        local = resolve_source(source, fetch_config)
        overrides = dict(overrides or {})
        asr = {k: overrides.pop(k) for k in ("asr_model", "asr_backend") if k in overrides}
        overrides.setdefault("pretrained_path", str(local))
        classifier = pretrained_from_hparams(
            cls, source=str(local), hparams_file=hparams_file, overrides=overrides, **kwargs
        )
        classifier.source = str(source)
        classifier.fetch_config = fetch_config
        if asr:
            classifier.set_asr(asr.get("asr_model"), asr.get("asr_backend"))
        return classifier

    @property
    def model(self):
        """The inference :class:`~m4ser_lobes.model.M4SER` (no AED, AEC or discriminator)."""
        return self.mods.model

    @property
    def classes(self):
        """Class names in index order."""
        encoder = self.hparams.label_encoder
        return [encoder.decode_ndim(i) for i in range(len(encoder))]

    @property
    def min_samples(self):
        """Shortest input (in samples) for which the speech encoder yields a frame (its CNN's
        receptive field); 1 for a text-only model."""
        return self.model.speech_encoder.min_samples if self.model.uses_speech else 1

    # ------------------------------------------------------------------ text
    def encode_texts(self, texts):
        """Normalise and tokenise transcripts as in training.

        Arguments
        ---------
        texts : list of str

        Returns
        -------
        input_ids : torch.Tensor
            [B, T_t] ids with [CLS]/[SEP], padded with the tokenizer's pad id.
        text_pad_mask : torch.Tensor
            [B, T_t] True = padding.
        """
        tokenizer = self.model.text_encoder.tokenizer
        ids = [encode_hypothesis(t or "", tokenizer, self.hparams.max_tokens) for t in texts]
        width = max(len(i) for i in ids)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        pad_mask = torch.ones(len(ids), width, dtype=torch.bool)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            pad_mask[row, : len(seq)] = False
        return input_ids.to(self.device), pad_mask.to(self.device)

    @property
    def asr_backend(self):
        """``asr_backend`` of the YAML (``transformers`` when absent) or of :meth:`set_asr`."""
        return getattr(self.hparams, "asr_backend", None) or DEFAULT_BACKEND

    def set_asr(self, model=None, backend=None):
        """Use another ASR model and/or backend for the inputs given without a transcript.

        Arguments
        ---------
        model : str or Path, optional
            Whisper Hub id or local folder (a CTranslate2 folder for ``faster-whisper``); default:
            keep ``asr_model``.
        backend : str, optional
            ``"transformers"`` or ``"faster-whisper"``; default: keep ``asr_backend``.
        """
        if backend is not None and backend not in BACKENDS:
            choices = ", ".join(BACKENDS)
            raise ValueError(f"unknown ASR backend {backend!r}; choose one of {choices}")
        if model is not None:
            self.hparams.asr_model = os.fspath(model)
        if backend is not None:
            self.hparams.asr_backend = backend
        self.asr = None  # loaded again, from the new settings, at first use

    def load_asr(self):
        """Load the ASR model (once) and return it; a failure says what to do instead.

        Returns
        -------
        callable
            ``list of [L] arrays -> list of str``.

        Raises
        ------
        ASRUnavailableError
            The model cannot be loaded (not cached offline, not a Whisper folder, backend not
            installed); the message names it and the ways around it.
        """
        if self.asr is None:
            from m4ser_lobes.text.transcribers import make_transcriber

            model, backend = self.hparams.asr_model, self.asr_backend
            logger.info("Loading the ASR model %s (%s)", model, backend)
            try:
                self.asr = make_transcriber(
                    backend,
                    str(model),
                    device=str(self.device),
                    batch_size=getattr(self.hparams, "asr_batch_size", 8),
                    chunk_seconds=getattr(self.hparams, "asr_chunk_seconds", 30.0),
                )
            except (OSError, ValueError, ImportError, RuntimeError) as err:
                raise asr_unavailable(model, backend, err) from err
        return self.asr

    def transcribe(self, waveforms):
        """Transcribe 16 kHz waveforms with the model's ASR (``asr_model``), loaded at first use.

        Arguments
        ---------
        waveforms : list of torch.Tensor
            [L_i] waveforms (no padding).

        Returns
        -------
        list of str
            Raw hypotheses.
        """
        asr = self.load_asr()
        return asr([w.detach().float().cpu().numpy() for w in waveforms])

    def load_corrector(self):
        """Build AED + AEC from ``corrector.ckpt`` (once); returns them as a ModuleDict."""
        if self.corrector is not None:
            return self.corrector
        if not getattr(self.hparams, "has_corrector", False):
            raise RuntimeError(
                "this model has no transcript corrector: it was trained without AED and AEC, or "
                "exported with --no-corrector"
            )
        path = Path(self.hparams.corrector_path)
        if not path.exists() and self.source and not Path(self.source).is_dir():
            from huggingface_hub import hf_hub_download

            path = Path(
                hf_hub_download(
                    repo_id=self.source,
                    filename=CORRECTOR_FILE,
                    revision=self.fetch_config.revision,
                    cache_dir=self.fetch_config.huggingface_cache_dir,
                    token=self.fetch_config.token,
                    local_files_only=not self.fetch_config.allow_network,
                )
            )
        if not path.exists():
            raise RuntimeError(f"{path}: the transcript corrector's weights are missing")
        corrector = torch.nn.ModuleDict(
            {"aed_head": self.hparams.aed_head(), "aec_decoder": self.hparams.aec_decoder()}
        )
        corrector.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.corrector = corrector.to(self.device).eval().requires_grad_(False)
        return self.corrector

    @torch.no_grad()
    def correct_transcripts(self, texts):
        """ASR error detection and correction (`docs/design.md §4`) of transcripts.

        Arguments
        ---------
        texts : list of str
            Raw transcripts (normalised and capped at ``max_tokens`` here, as the model reads them).

        Returns
        -------
        list of str
            Corrected, normalised texts.
        """
        if not texts:
            return []
        corrector = self.load_corrector()
        input_ids, pad_mask = self.encode_texts(texts)
        max_len = getattr(self.hparams, "aec_max_len", 16)
        with self.inference_ctx, _attached(self.model, corrector) as model:
            labels, spans = model.correct_transcripts(input_ids, pad_mask, max_len=max_len)
        tokenizer = self.model.text_encoder.tokenizer
        return [
            correct_text(ids, lab, span, tokenizer)
            for ids, lab, span in zip(input_ids.cpu(), labels.cpu(), spans)
        ]

    # ------------------------------------------------------------------ classification
    def _check_batch(self, wavs, wav_lens):
        wavs = torch.as_tensor(wavs)
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wavs.dim() != 2:
            raise ValueError(
                f"wavs must be [B, L] (or [L]) mono 16 kHz audio, got shape {tuple(wavs.shape)}"
            )
        wavs = wavs.float().to(self.device)
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wav_lens = torch.as_tensor(wav_lens, dtype=torch.float).to(self.device)
        if wav_lens.shape != (wavs.shape[0],):
            raise ValueError(f"wav_lens must be [B]={wavs.shape[0]}, got {tuple(wav_lens.shape)}")
        if not torch.isfinite(wavs).all():
            raise ValueError("wavs contain NaN or Inf samples")
        shortest = int((wav_lens.min() * wavs.shape[1]).round())
        if shortest < self.min_samples:
            raise ValueError(
                f"an utterance has {shortest} samples; the speech encoder needs at least "
                f"{self.min_samples} ({self.min_samples / self.hparams.sample_rate:.3f} s)"
            )
        return wavs, wav_lens

    def _texts(self, wavs, wav_lens, transcripts):
        """Transcripts for a batch: the given ones, ASR for the missing ones; and their sources."""
        count = wavs.shape[0]
        if not self.model.uses_text:
            given = list(transcripts) if transcripts is not None else [None] * count
            return given, ["unused"] * count
        if isinstance(transcripts, str):
            transcripts = [transcripts]
        texts = list(transcripts) if transcripts is not None else [None] * count
        if len(texts) != count:
            raise ValueError(f"{len(texts)} transcripts for a batch of {count} waveforms")
        sources = ["given" if t is not None else "asr" for t in texts]
        missing = [i for i, t in enumerate(texts) if t is None]
        if missing:
            lengths = (wav_lens * wavs.shape[1]).round().long()
            heard = self.transcribe([wavs[i, : lengths[i]] for i in missing])
            for i, text in zip(missing, heard):
                texts[i] = text
        return texts, sources

    @torch.no_grad()
    def emotion_probabilities(self, wavs, wav_lens, texts):
        """Softmax of the emotion logits (Eq. 18) for a checked batch, [B, C]."""
        input_ids = pad_mask = None
        if self.model.uses_text:
            input_ids, pad_mask = self.encode_texts(texts)
        with self.inference_ctx:
            logits = self.model(wavs, wav_lens, input_ids, pad_mask).logits
        return torch.softmax(logits.float(), dim=-1)

    def _result(self, probabilities):
        """SpeechBrain's ``(probabilities, score, index, labels)`` of [B, C] probabilities."""
        score, index = torch.max(probabilities, dim=-1)
        labels = self.hparams.label_encoder.decode_torch(index)
        return probabilities, score, index, labels

    def classify_batch(self, wavs, wav_lens=None, transcripts=None, **removed):
        """Classify a padded batch of 16 kHz mono waveforms.

        The text each prediction read (and its correction) comes from :meth:`transcribe_batch`.

        Arguments
        ---------
        wavs : torch.Tensor
            [B, L] waveforms at ``sample_rate`` (16 kHz), zero-padded on the right.
        wav_lens : torch.Tensor, optional
            [B] relative lengths (SpeechBrain convention); default all 1.
        transcripts : list of (str or None), optional
            One per waveform; a missing one (None) is produced by the ASR model; ``""`` is a
            given, empty transcript (the ASR does not run).

        Returns
        -------
        probabilities : torch.Tensor
            [B, C] class probabilities.
        score : torch.Tensor
            [B] probability of the best class.
        index : torch.Tensor
            [B] index of the best class.
        labels : list of str
            Names of the best classes.
        """
        _refuse_transcript_flags("classify_batch", "transcribe_batch(wavs, wav_lens)", removed)
        wavs, wav_lens = self._check_batch(wavs, wav_lens)
        texts, _ = self._texts(wavs, wav_lens, transcripts)
        return self._result(self.emotion_probabilities(wavs, wav_lens, texts))

    def transcribe_batch(self, wavs, wav_lens=None, transcripts=None, correct=False):
        """The text the model reads for each utterance of a batch, and its correction.

        Passing the texts back, ``classify_batch(wavs, wav_lens, [i.text for i in infos])``,
        gives the predictions of ``classify_batch(wavs, wav_lens, transcripts)`` without running
        the ASR again.

        Arguments
        ---------
        wavs, wav_lens, transcripts
            As :meth:`classify_batch` (the ASR runs for the missing transcripts only).
        correct : bool
            Also correct the texts with AED + AEC (``corrector.ckpt``, loaded at first use).

        Returns
        -------
        list of TranscriptInfo
            One per utterance: ``text``, ``source`` (``given``/``asr``/``unused``) and
            ``corrected`` (None unless ``correct``).
        """
        wavs, wav_lens = self._check_batch(wavs, wav_lens)
        texts, sources = self._texts(wavs, wav_lens, transcripts)
        corrected = self.correct_transcripts(texts) if correct else [None] * len(texts)
        return [TranscriptInfo(t, s, c) for t, s, c in zip(texts, sources, corrected)]

    def _file_windows(self, path):
        """[N, window] windows of an audio file (the long-audio policy), on the device."""
        rate = self.hparams.sample_rate
        wav = load_audio(path, sample_rate=rate)
        if wav.shape[0] < self.min_samples:
            raise AudioError(
                f"{os.fspath(path)}: {wav.shape[0] / rate:.3f} s of audio is too short; the "
                f"speech encoder needs at least {self.min_samples / rate:.3f} s"
            )
        windows = split_windows(
            wav, int(self.hparams.window_seconds * rate), int(self.hparams.max_windows)
        ).to(self.device)
        if windows.shape[0] > 1:
            logger.info(
                "%s: %.1f s classified as %d windows of %.1f s",
                path,
                wav.shape[0] / rate,
                windows.shape[0],
                windows.shape[1] / rate,
            )
        return windows

    def _window_texts(self, windows, transcript):
        """(one text per window, source): the given transcript, or the ASR of each window."""
        count = windows.shape[0]
        if transcript is not None or not self.model.uses_text:
            return [transcript] * count, "given" if self.model.uses_text else "unused"
        return self.transcribe(list(windows)), "asr"

    def _window_probabilities(self, windows, texts):
        """SpeechBrain's 4-tuple of a file's windows: their probabilities averaged (B = 1)."""
        ones = torch.ones(windows.shape[0], device=self.device)
        step = max(1, int(self.hparams.batch_size))
        probabilities = torch.cat(
            [
                self.emotion_probabilities(
                    windows[i : i + step], ones[i : i + step], texts[i : i + step]
                )
                for i in range(0, windows.shape[0], step)
            ]
        ).mean(dim=0, keepdim=True)
        return self._result(probabilities)

    def _transcript_info(self, texts, source, correct):
        """The :class:`TranscriptInfo` of a file's window texts (joined when transcribed)."""
        used = texts[0] if source != "asr" else " ".join(t for t in texts if t)
        corrected = None
        if correct:
            parts = texts[:1] if source != "asr" else [t for t in texts if t]
            corrected = " ".join(c for c in self.correct_transcripts(parts) if c)
        return TranscriptInfo(used, source, corrected)

    def _classify_path(self, path, transcript=None, correct=False):
        """Classify an audio file and say what it read: the file is decoded once and the ASR
        runs at most once (``m4ser-classify`` calls this once per file).

        Arguments
        ---------
        path, transcript
            As :meth:`classify_file`.
        correct : bool
            As :meth:`transcribe_file`.

        Returns
        -------
        result : tuple
            ``(probabilities, score, index, labels)``, as :meth:`classify_file` returns.
        info : TranscriptInfo
            As :meth:`transcribe_file` returns.
        """
        windows = self._file_windows(path)
        texts, source = self._window_texts(windows, transcript)
        result = self._window_probabilities(windows, texts)
        return result, self._transcript_info(texts, source, correct)

    def classify_file(self, path, transcript=None, **removed):
        """Classify one audio file of any sample rate and channel count.

        The file is read with :func:`m4ser_lobes.data.audio.load_audio` (resampled to 16 kHz,
        channels averaged); long files follow the window policy of the module docstring.

        Arguments
        ---------
        path : str or Path
            Audio file (wav, flac, ogg ...).
        transcript : str, optional
            What was said; the ASR model transcribes the file when it is None. ``""`` is a given,
            empty transcript (the ASR does not run), as an empty cell of m4ser-classify's
            ``--transcripts`` CSV is.

        Returns
        -------
        tuple
            ``(probabilities, score, index, labels)`` as :meth:`classify_batch`, with B = 1. The
            text read (and its correction) comes from :meth:`transcribe_file`.

        Raises
        ------
        m4ser_lobes.data.audio.AudioError
            The file is missing, not audio, empty, not finite or too short; the message names it.
        """
        _refuse_transcript_flags("classify_file", "transcribe_file(path)", removed)
        windows = self._file_windows(path)
        texts, _ = self._window_texts(windows, transcript)
        return self._window_probabilities(windows, texts)

    def transcribe_file(self, path, transcript=None, correct=False):
        """The text the model reads for an audio file (what :meth:`classify_file` pairs with it).

        Passing the text back, ``classify_file(path, transcript=info.text)``, gives the
        prediction of ``classify_file(path)`` without running the ASR again.

        Arguments
        ---------
        path : str or Path
            Audio file, read as :meth:`classify_file` reads it.
        transcript : str, optional
            A given transcript (returned as is, source ``given``); None: the ASR model
            transcribes each window of the file.
        correct : bool
            Also correct the text with AED + AEC (``corrector.ckpt``, loaded at first use).

        Returns
        -------
        TranscriptInfo
            ``text`` (for a long file without a transcript, the window texts joined by spaces),
            ``source`` (``given``/``asr``/``unused``) and ``corrected`` (None unless ``correct``).

        Raises
        ------
        m4ser_lobes.data.audio.AudioError
            As :meth:`classify_file`.
        """
        windows = self._file_windows(path)
        texts, source = self._window_texts(windows, transcript)
        return self._transcript_info(texts, source, correct)

    def forward(self, wavs, wav_lens=None, transcripts=None):
        """Class probabilities [B, C] of a batch (see :meth:`classify_batch`)."""
        return self.classify_batch(wavs, wav_lens, transcripts)[0]
