"""ASR hypotheses, computed once and cached: the JSON cache, its validation and WER.

Design: docs/design.md §7.

Training never runs ASR: :func:`transcribe_manifest` transcribes every utterance of the manifests
once (:mod:`m4ser_lobes.text.transcribers`) and writes a JSON cache (docs/CONTRACTS.md)::

    {"model": "openai/whisper-medium.en", "backend": "transformers", "wer": 0.2048,
     "wer_per_split": {"Session1": 0.19}, "num_utterances": 5531,
     "hypotheses": {"Ses01F_impro01_F000": "excuse me", ...}}

The cache is written atomically every few batches, so an interrupted run resumes where it stopped
(cached ids are skipped). Hypotheses from another ASR (or a paper's release) can be supplied in the
same format; only ``hypotheses`` is required, and running :func:`transcribe_manifest` on such a
cache only fills in the WER. WER is computed with jiwer on normalised text
(:func:`m4ser_lobes.text.normalize.normalize_text`), overall and per ``session`` of the manifests
(IEMOCAP session / MELD split). :func:`load_cache` is the one validator of the format; the
command line is ``m4ser-asr`` (:mod:`m4ser_lobes.text.asr`).

What a run's text branch read, from the cache without its hypotheses: :mod:`m4ser_lobes.text.
provenance`.

Example
-------
>>> import numpy as np, soundfile as sf
>>> from m4ser_lobes.testing.models import save_tiny_whisper
>>> tmp = getfixture("tmp_path")
>>> whisper = save_tiny_whisper(tmp / "whisper", ["hello", "world"])
>>> sf.write(tmp / "a.wav", np.zeros(8000, dtype="float32"), 16000)
>>> manifest = tmp / "m.json"
>>> _ = manifest.write_text(json.dumps({"a": {"wav": str(tmp / "a.wav"), "transcript": "Hello.",
...                                          "session": "Session1"}}))
>>> cache = transcribe_manifest([manifest], tmp / "hyps.json", str(whisper), progress=False,
...                             verbose=False)
>>> sorted(cache), list(cache["hypotheses"])
(['backend', 'hypotheses', 'model', 'num_utterances', 'wer', 'wer_per_split'], ['a'])
>>> load_hypotheses(tmp / "hyps.json").keys()
dict_keys(['a'])
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from m4ser_lobes.data.audio import AudioError, load_audio
from m4ser_lobes.text.statistics import word_error_rate
from m4ser_lobes.text.transcribers import DEFAULT_BACKEND, make_transcriber
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)

CACHE_FIELDS = ("model", "backend", "wer", "wer_per_split", "num_utterances", "hypotheses")

__all__ = [
    "CACHE_FIELDS",
    "load_manifests",
    "load_cache",
    "load_hypotheses",
    "corpus_wer",
    "transcribe_manifest",
    "format_wer_report",
]


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


def _cache_object(model_id, hypotheses, entries=None, failed=None, backend=None):
    wer, per_split = corpus_wer(hypotheses, entries) if entries is not None else (None, {})
    cache = {
        "model": model_id,
        "backend": backend,
        "wer": wer,
        "wer_per_split": per_split,
        "num_utterances": len(hypotheses),
        "hypotheses": hypotheses,
    }
    if failed:
        cache["failed"] = failed
    return cache


def _existing_cache(cache_path, model_id, overwrite):
    """Hypotheses, model id and backend of an existing cache (empty when absent or overwritten)."""
    path = Path(cache_path)
    if overwrite or not path.exists():
        return {}, None, None
    cache = load_cache(path)
    cached_model = cache.get("model")
    if cached_model and model_id and cached_model != model_id:
        raise ValueError(
            f"hypothesis cache {path} was made with {cached_model!r}, not {model_id!r}; use "
            "another --cache path, or pass --overwrite to recompute it"
        )
    return dict(cache["hypotheses"]), cached_model, cache.get("backend")


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
    hypotheses, cached_model, cached_backend = _existing_cache(cache_path, model_id, overwrite)
    model_id = model_id or cached_model
    todo = [utt_id for utt_id in entries if utt_id not in hypotheses]
    if todo and hypotheses and cached_backend not in (None, backend):
        logger.warning("%s was begun with the %s backend and is completed with %s",
                       cache_path, cached_backend, backend)
        backend = f"{cached_backend}+{backend}"
    elif not todo:  # nothing transcribed here: the cache keeps what made it
        backend = cached_backend
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
        transcriber = make_transcriber(  # the decoding options, passed through
            backend, model_id, **extra, device=device, fp16=fp16, batch_size=batch_size,
            chunk_seconds=chunk_seconds, language=language, num_beams=num_beams,
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
            atomic_write_json(
                cache_path, _cache_object(model_id, hypotheses, failed=failed, backend=backend)
            )
    cache = _cache_object(model_id, hypotheses, entries, failed, backend)
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

    made = cache["model"] if not cache.get("backend") else f"{cache['model']}, {cache['backend']}"
    lines = [f"ASR hypotheses: {cache['num_utterances']} in {cache_path} (model {made})"]
    lines.append(f"  WER overall       {pct(cache['wer'])}")
    lines += [f"  WER {split:<13} {pct(w)}" for split, w in cache["wer_per_split"].items()]
    if cache.get("failed"):
        lines.append(f"  unreadable audio  {len(cache['failed'])} (see 'failed' in the cache)")
    return "\n".join(lines)
