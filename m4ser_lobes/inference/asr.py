"""The ASR model of an export: loading it once, and saying what to do when it cannot be loaded.

An input given without a transcript is transcribed by the model that ``asr_model`` names in the
export's ``hyperparams.yaml`` (``asr_backend``: ``transformers``, the default, or
``faster-whisper``), as the text branch read Whisper hypotheses in training.
:func:`load_transcriber` builds it (:func:`m4ser_lobes.text.transcribers.make_transcriber`);
when that fails, offline without a cached model for instance, it raises
:class:`ASRUnavailableError` with the ways around it (:func:`asr_unavailable`).
``M4SERClassifier.load_asr`` calls it once, at first use.
"""

from __future__ import annotations

import logging

from m4ser_lobes.text.transcribers import BACKENDS, DEFAULT_BACKEND

logger = logging.getLogger(__name__)

__all__ = ["ASRUnavailableError", "asr_unavailable", "check_backend", "load_transcriber"]


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


def check_backend(backend):
    """``backend`` itself, or ``transformers`` for None; an unknown one is a ValueError.

    Example
    -------
    >>> check_backend(None), check_backend("faster-whisper")
    ('transformers', 'faster-whisper')
    >>> check_backend("whisper.cpp")
    Traceback (most recent call last):
    ...
    ValueError: unknown ASR backend 'whisper.cpp'; choose one of transformers, faster-whisper
    """
    if backend is None:
        return DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def load_transcriber(model, backend, device, batch_size=8, chunk_seconds=30.0):
    """Build the transcriber of ``model`` with ``backend``; a failure says what to do instead.

    Arguments
    ---------
    model : str or Path
        Whisper Hub id or local folder (a CTranslate2 folder or size for ``faster-whisper``).
    backend : str
        ``transformers`` or ``faster-whisper``.
    device : str
        Where it runs.
    batch_size : int
        Utterances per ASR batch (``asr_batch_size`` of the YAML).
    chunk_seconds : float
        Longest audio transcribed in one piece (``asr_chunk_seconds``).

    Returns
    -------
    callable
        ``list of [L] float arrays (16 kHz) -> list of str``.

    Raises
    ------
    ASRUnavailableError
        The model cannot be loaded (not cached offline, not a Whisper folder, backend not
        installed); the message names it and the ways around it.
    """
    from m4ser_lobes.text.transcribers import make_transcriber

    logger.info("Loading the ASR model %s (%s)", model, backend)
    try:
        return make_transcriber(
            backend, str(model), device=device, batch_size=batch_size, chunk_seconds=chunk_seconds
        )
    except (OSError, ValueError, ImportError, RuntimeError) as err:
        raise asr_unavailable(model, backend, err) from err
