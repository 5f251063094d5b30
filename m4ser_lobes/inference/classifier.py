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
first time a correction is asked for. A transcript is given when it is a string, even an empty
one (``""``: the text branch reads an empty text, as for an empty ASR hypothesis in training);
only ``None`` asks for the ASR model of the export (:mod:`m4ser_lobes.inference.asr`: loaded once,
at first use; :class:`ASRUnavailableError` says what to do when it cannot be). Text goes through
the training pipeline's normaliser and tokenizer
(:func:`m4ser_lobes.text.tokens.encode_text`, with ``keep_punctuation`` as the model trained).

An export folder or Hub repo is data: before HyperPyYAML builds anything, its
``hyperparams.yaml`` must be the packaged ``inference.yaml`` with plain values, naming only the
project's own classes and SpeechBrain's (:mod:`m4ser_lobes.inference.safety`); anything else is
refused with one line and nothing runs (``trust_code=True`` skips the check, for a folder you
wrote yourself). Weights are read with ``torch.load(..., weights_only=True)``.

Files are read in one place, :func:`m4ser_lobes.inference.windows.read_windows` (any sample rate
and channel count; the long-audio policy): a file longer than ``window_seconds`` (the training
crop) is classified as at most ``max_windows`` windows of exactly that length, evenly spaced from
its start to its end, ``batch_size`` at a time, their probabilities averaged; without a given
transcript the whole file is transcribed once and that text is paired with every window. A
shorter file is classified whole, as the training Brain's test stage crops it. Padding never changes a prediction:
:meth:`classify_batch` gives each utterance of a padded batch the probabilities it gets alone
(tested to 1e-5, for group-norm speech encoders such as HuBERT/wav2vec2 base too), so the Brain's
padded test batches, a batch of one and :meth:`classify_file` agree.

Shape legend: B batch, L samples, N windows, T_t tokens, C classes. Masks: True = padding.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import NamedTuple

import torch
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchConfig, LocalStrategy

from m4ser_lobes.inference.asr import (
    ASRUnavailableError,
    check_backend,
    load_transcriber,
)
from m4ser_lobes.inference.folder import check_export_files, corrector_file, resolve_source
from m4ser_lobes.inference.safety import check_export_yaml, load_checked
from m4ser_lobes.inference.windows import (
    check_window_settings,
    mean_probabilities,
    read_windows,
)
from m4ser_lobes.text.alignment import correct as correct_text
from m4ser_lobes.text.tokens import encode_text

logger = logging.getLogger(__name__)


__all__ = ["ASRUnavailableError", "M4SERClassifier", "TranscriptInfo"]


class TranscriptInfo(NamedTuple):
    """The text behind one prediction."""

    text: str | None  # raw transcript the text encoder read (None: speech-only model)
    source: str  # "given", "asr" or "unused" (speech-only model)
    corrected: str | None = None  # AED + AEC correction, normalised (when asked for)


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

    Transcripts: a given one (a string, even ``""``) is used as is; a missing one (None) is
    transcribed by the ASR model (:meth:`load_asr`, :meth:`set_asr`).

    Usage (tested in ``tests/integration/test_inference.py`` on a trained tiny model)::

        classifier = M4SERClassifier.from_hparams("exported/m4ser", run_opts={"device": "cuda"})
        probs, score, index, labels = classifier.classify_batch(
            wavs, torch.tensor([1.0, 0.6]), transcripts=["oh no", None])  # None: ASR
        probs.shape, labels   # (torch.Size([2, 4]), ['sad', 'hap'])
    """

    MODULES_NEEDED = ["model"]
    HPARAMS_NEEDED = ["label_encoder", "sample_rate", "max_tokens", "window_seconds",
                      "max_windows", "batch_size", "asr_model"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hparams = self.hparams
        where = os.path.join(str(getattr(hparams, "pretrained_path", ".")), "hyperparams.yaml")
        check_window_settings(hparams.window_seconds, hparams.max_windows, hparams.batch_size, where)
        encoder = hparams.label_encoder
        expected = getattr(hparams, "num_emotions", None) or len(encoder)
        if len(encoder) != expected:
            raise ValueError(
                f"{os.path.dirname(where)}: label_encoder.txt holds {len(encoder)} classes but "
                f"the model has {expected}; export the model again with m4ser-export"
            )
        encoder.expect_len(expected)
        self.source = None  # set by from_hparams (for a lazy download of corrector.ckpt)
        self.fetch_config = FetchConfig()
        self.asr = None  # an m4ser_lobes.text.transcribers transcriber, built at first use
        self.corrector = None  # ModuleDict(aed_head, aec_decoder), built at first use

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_hparams(
        cls,
        source,
        hparams_file="hyperparams.yaml",
        overrides=None,
        savedir=None,
        fetch_config=None,
        local_strategy=LocalStrategy.SYMLINK,
        trust_code=False,
        **kwargs,
    ):
        """Load an export from a local folder or a Hub repo id (offline once cached).

        As SpeechBrain's ``pretrained_from_hparams``, except that the folder is data: its
        ``hyperparams.yaml`` is checked before HyperPyYAML runs any of it
        (:func:`m4ser_lobes.inference.safety.check_export_yaml`), and the checked text is the one
        loaded.

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
        savedir : str or Path, optional
            Where the Pretrainer links (or copies) ``model.ckpt`` and ``label_encoder.txt``.
        fetch_config : speechbrain.utils.fetching.FetchConfig, optional
            ``revision``, ``token``, ``huggingface_cache_dir``, ``allow_network`` for a Hub id.
        local_strategy : speechbrain.utils.fetching.LocalStrategy
            How the Pretrainer collects the files in ``savedir``.
        trust_code : bool
            Skip the check of ``hyperparams.yaml``: HyperPyYAML then runs whatever it names.
            Only for a folder you wrote yourself.
        **kwargs
            Forwarded to the constructor (``run_opts``, ``freeze_params``).

        Returns
        -------
        M4SERClassifier

        Raises
        ------
        m4ser_lobes.inference.safety.UnsafeYAMLError
            ``hyperparams.yaml`` is not what ``m4ser-export`` writes (one line naming the tag).
        FileNotFoundError
            The folder lacks ``hyperparams.yaml``, ``model.ckpt`` or ``label_encoder.txt``.
        """
        fetch_config = fetch_config or FetchConfig()
        local = resolve_source(source, fetch_config)
        check_export_files(local, hparams_file)
        overrides = dict(overrides or {})
        asr = {k: overrides.pop(k) for k in ("asr_model", "asr_backend") if k in overrides}
        overrides.setdefault("pretrained_path", str(local))
        hparams = load_checked(
            local / hparams_file, check_export_yaml, overrides, trust_code=trust_code
        )
        hparams["savedir"] = savedir
        pretrainer = hparams["pretrainer"]
        pretrainer.set_collect_in(savedir)
        pretrainer.collect_files(
            default_source=str(local), local_strategy=local_strategy, fetch_config=fetch_config
        )
        pretrainer.load_collected()
        classifier = cls(modules=hparams["modules"], hparams=hparams, **kwargs)
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
        ids = [self._encode(t, tokenizer)[0] for t in texts]
        width = max(len(i) for i in ids)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        pad_mask = torch.ones(len(ids), width, dtype=torch.bool)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            pad_mask[row, : len(seq)] = False
        return input_ids.to(self.device), pad_mask.to(self.device)

    def _encode(self, text, tokenizer):
        """``encode_text`` as in training (exports older than ``keep_punctuation``: False)."""
        keep = bool(getattr(self.hparams, "keep_punctuation", False))
        return encode_text(text or "", tokenizer, self.hparams.max_tokens, keep)

    @property
    def asr_backend(self):
        """``asr_backend`` of the YAML (``transformers`` when absent) or of :meth:`set_asr`."""
        return check_backend(getattr(self.hparams, "asr_backend", None))

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
        if backend is not None:
            self.hparams.asr_backend = check_backend(backend)
        if model is not None:
            self.hparams.asr_model = os.fspath(model)
        self.asr = None  # loaded again, from the new settings, at first use

    def load_asr(self):
        """Load the ASR model (once) and return it (:func:`.asr.load_transcriber`).

        Raises
        ------
        ASRUnavailableError
            The model cannot be loaded (not cached offline, not a Whisper folder, backend not
            installed); the message names it and the ways around it.
        """
        if self.asr is None:
            self.asr = load_transcriber(
                self.hparams.asr_model,
                self.asr_backend,
                device=str(self.device),
                batch_size=getattr(self.hparams, "asr_batch_size", 8),
                chunk_seconds=getattr(self.hparams, "asr_chunk_seconds", 30.0),
            )
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
        path = corrector_file(self.hparams.corrector_path, self.source, self.fetch_config)
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
            correct_text(ids, lab, span, tokenizer, self._encode(text, tokenizer)[1])
            for ids, lab, span, text in zip(input_ids.cpu(), labels.cpu(), spans, texts)
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

    def classify_batch(self, wavs, wav_lens=None, transcripts=None):
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

    def _file(self, path, transcript=None, classify=True, correct=False):
        """The one code path that reads an audio file: decoded once, the ASR run at most once.

        The file is read and cut by :func:`m4ser_lobes.inference.windows.read_windows` (the
        long-audio policy); every window is paired with the given transcript, or with the
        transcript of the whole file (the ASR runs once, on all of it).

        Returns
        -------
        result : tuple or None
            ``(probabilities, score, index, labels)`` with B = 1 (None unless ``classify``).
        info : TranscriptInfo
            The text read (the whole file's), its source and, with ``correct``, its AED + AEC
            correction.
        """
        hparams = self.hparams
        audio, windows = read_windows(
            path, hparams.sample_rate, hparams.window_seconds, hparams.max_windows, self.min_samples
        )
        windows = windows.to(self.device)
        if not self.model.uses_text:
            text, source = transcript, "unused"
        elif transcript is not None:
            text, source = transcript, "given"
        else:
            (text,), source = self.transcribe([audio]), "asr"
        result = None
        if classify:
            texts = [text] * windows.shape[0]
            probabilities = mean_probabilities(
                self.emotion_probabilities, windows, texts, hparams.batch_size
            )
            result = self._result(probabilities)
        corrected = None
        if correct:
            corrected = " ".join(c for c in self.correct_transcripts([text]) if c)
        return result, TranscriptInfo(text, source, corrected)

    def classify_file(self, path, transcript=None):
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
        return self._file(path, transcript)[0]

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
            transcribes the whole file, once.
        correct : bool
            Also correct the text with AED + AEC (``corrector.ckpt``, loaded at first use).

        Returns
        -------
        TranscriptInfo
            ``text`` (without a given transcript, the whole file's, as every window of a long
            file reads it), ``source`` (``given``/``asr``/``unused``) and ``corrected`` (None unless ``correct``).

        Raises
        ------
        m4ser_lobes.data.audio.AudioError
            As :meth:`classify_file`.
        """
        return self._file(path, transcript, classify=False, correct=correct)[1]

    def classify_and_transcribe_file(self, path, transcript=None, correct=False):
        """:meth:`classify_file` and :meth:`transcribe_file` of a file, read and transcribed once
        (what ``m4ser-classify`` calls for each file).

        Returns
        -------
        result : tuple
            ``(probabilities, score, index, labels)``, as :meth:`classify_file` returns.
        info : TranscriptInfo
            As :meth:`transcribe_file` returns.
        """
        return self._file(path, transcript, correct=correct)

    def forward(self, wavs, wav_lens=None, transcripts=None):
        """Class probabilities [B, C] of a batch (see :meth:`classify_batch`)."""
        return self.classify_batch(wavs, wav_lens, transcripts)[0]
