"""MELD audio: clips decoded to 16 kHz mono wav, the decoding cache, mis-cut clips, levels.

The audio half of the MELD preparation; :mod:`m4ser_lobes.corpora.meld` reads the CSVs, finds
the files, calls :func:`prepare_audio` and writes the manifests.

Users who already converted the clips to 16 kHz mono wav or flac keep the folder names and file
stems (``train_splits/dia0_utt0.wav``) and point ``data_folder`` at them: such files are used
in place. Anything else (the mp4 clips, or wav/flac at another rate) is decoded once into
``audio_cache`` (default ``<save_folder>/audio16k``) as ``<split>/dia{D}_utt{U}.wav``, 16 kHz
mono 16-bit PCM. The decoder is PyAV (``pip install av``), which ships FFmpeg's own libraries,
so no system ffmpeg is needed and the result is what ``ffmpeg -ac 1 -ar 16000`` gives (FFmpeg's
default downmix, see :func:`decode_audio`). The conversion runs on ``num_workers`` processes
with a progress bar, writes each file atomically and skips files already in the cache, so an
interrupted run resumes where it stopped (delete the cache after replacing clips in
``data_folder``).

Rules applied per clip (the ``flags`` of a manifest entry; see the MELD module's docstring for
the clips of the release they catch):

* ``undecodable``: the clip does not decode; the utterance is skipped, with the decoder's message.
* ``miscut``: the decoded duration exceeds the CSV span ``EndTime - StartTime`` by more than
  ``miscut_margin`` seconds and is longer than ``miscut_min_seconds``. In the splits of
  ``trim_miscut`` the audio is then cut to its first span seconds (``trimmed``; a copy under
  ``<audio_cache>/<split>/trimmed/``): the cut started at ``StartTime`` and only its end went
  wrong, so the first span seconds are the labelled utterance.
* ``bad_span``: the CSV times do not parse or ``EndTime`` is not after ``StartTime``; the row is
  kept (times are metadata) and never trimmed.
* ``quiet``: RMS below ``quiet_dbfs``; kept (silence is a property of the data, not a failure).

Example
-------
>>> from m4ser_lobes.testing.mini_meld import write_clip
>>> tmp = getfixture("tmp_path")
>>> write_clip(tmp / "dia0_utt0.mp4", np.full(48000, 0.1, dtype=np.float32))
>>> results = convert_audio([("u", str(tmp / "dia0_utt0.mp4"), str(tmp / "cache" / "u.wav"))], 1)
>>> results["u"].decoded, round(results["u"].duration, 1), round(results["u"].rms_dbfs)
(True, 1.0, -20)
>>> convert_audio([("u", str(tmp / "dia0_utt0.mp4"), str(tmp / "cache" / "u.wav"))], 1)["u"].decoded
False
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from m4ser_lobes.utils.fileio import current_umask

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac")  # already-converted clips, used in place when 16 kHz mono


class AudioResult(NamedTuple):
    """The usable audio of one utterance, or why there is none."""

    utt_id: str
    wav: str | None
    duration: float | None
    rms_dbfs: float | None
    decoded: bool  # decoded by this run (False: found in the cache or used in place)
    error: str | None


def decode_audio(path, sample_rate=SAMPLE_RATE):
    """Decode the first audio stream of a media file to mono float32 at ``sample_rate`` (PyAV).

    FFmpeg's resampler (libswresample) converts the rate and downmixes with its default matrix,
    as ``ffmpeg -ac 1`` does: the centre channel of a 5.1 track, where film dialogue sits, keeps
    its level (a plain channel mean would lower it by 15 dB), left and right are mixed at -3 dB,
    the LFE channel is dropped. A result beyond full scale (two loud in-phase channels) is scaled
    down to a peak of 1, never clipped.

    Arguments
    ---------
    path : str or Path
        mp4 (or any container FFmpeg reads).
    sample_rate : int

    Returns
    -------
    numpy.ndarray
        [L] float32.

    Example
    -------
    >>> from m4ser_lobes.testing.mini_meld import write_clip
    >>> path = getfixture("tmp_path") / "a.mp4"
    >>> write_clip(path, np.zeros(48000, dtype=np.float32) + 0.1)
    >>> audio = decode_audio(path)
    >>> audio.dtype, round(len(audio) / SAMPLE_RATE, 1)
    (dtype('float32'), 1.0)
    """
    import av

    chunks = []
    with av.open(os.fspath(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for frame in container.decode(stream):
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise ValueError("the audio stream holds no samples")
    audio = np.concatenate(chunks, axis=1)[0].astype(np.float32)
    peak = float(np.abs(audio).max())
    return audio / np.float32(peak) if peak > 1.0 else audio


def write_wav(path, audio, sample_rate=SAMPLE_RATE):
    """Atomically write float audio as 16-bit PCM wav (temporary file + ``os.replace``)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; the cache is shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rms_dbfs(audio):
    """RMS level in dB relative to full scale (-200 for digital silence).

    Example
    -------
    >>> round(rms_dbfs(np.full(100, 0.1, dtype=np.float32)), 1), rms_dbfs(np.zeros(4))
    (-20.0, -200.0)
    """
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return round(20 * math.log10(rms), 2) if rms > 1e-10 else -200.0


def read_mono(path):
    """A 16 kHz mono file as float32, or ValueError when it is something else."""
    import soundfile as sf

    audio, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE or audio.shape[1] != 1:
        raise ValueError(f"{rate} Hz, {audio.shape[1]} channel(s)")
    return audio[:, 0]


def _convert_one(job):
    """Pool worker: return the :class:`AudioResult` of one ``(utt_id, source, target)`` job.

    A 16 kHz mono wav/flac source is used in place; otherwise an existing ``target`` is reused,
    or the source is decoded into it.
    """
    utt_id, source, target = job
    if Path(source).suffix.lower() in AUDIO_SUFFIXES:
        try:
            audio = read_mono(source)
            return AudioResult(utt_id, source, len(audio) / SAMPLE_RATE, rms_dbfs(audio),
                               False, None)
        except Exception:  # not 16 kHz mono (or unreadable): decode it below
            pass
    if os.path.isfile(target):
        try:
            audio = read_mono(target)
            return AudioResult(utt_id, target, len(audio) / SAMPLE_RATE, rms_dbfs(audio),
                               False, None)
        except Exception as error:
            logger.warning("%s: unreadable cache file (%s), decoding again", target, error)
    try:
        audio = decode_audio(source)
    except Exception as error:  # PyAV raises many types (InvalidDataError, ValueError, ...)
        return AudioResult(utt_id, None, None, None, False, f"{type(error).__name__}: {error}")
    write_wav(target, audio)
    return AudioResult(utt_id, target, len(audio) / SAMPLE_RATE, rms_dbfs(audio), True, None)


def convert_audio(jobs, num_workers=2):
    """Run :func:`_convert_one` over ``jobs`` with a progress bar; return utt_id -> result.

    Arguments
    ---------
    jobs : list of (utt_id, source, target)
    num_workers : int
        Processes (0 or 1: in this process).
    """
    from tqdm import tqdm

    results = {}
    bar = tqdm(total=len(jobs), desc="MELD audio", unit="clip", disable=not jobs, leave=False)
    if num_workers > 1 and len(jobs) > 1:
        import multiprocessing

        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with context.Pool(num_workers) as pool:
            for result in pool.imap_unordered(_convert_one, jobs, chunksize=4):
                results[result.utt_id] = result
                bar.update()
    else:
        for job in jobs:
            result = _convert_one(job)
            results[result.utt_id] = result
            bar.update()
    bar.close()
    return results


def cache_path(audio_cache, row):
    """Where the decoded audio of a ``meld.Row`` goes: ``<cache>/<split>/dia{D}_utt{U}.wav``."""
    return Path(audio_cache) / row.split / f"dia{row.dialogue}_utt{row.utterance}.wav"


def trim(wav, audio_cache, row, span):
    """Write the first ``span`` seconds of ``wav`` under ``<audio_cache>/<split>/trimmed/``."""
    target = Path(audio_cache) / row.split / "trimmed" / f"dia{row.dialogue}_utt{row.utterance}.wav"
    write_wav(target, read_mono(wav)[: int(round(span * SAMPLE_RATE))])
    return str(target)


def prepare_audio(rows, clips, audio_cache, num_workers=2, trim_miscut=("train", "dev"),
                  miscut_margin=10.0, miscut_min_seconds=30.0, quiet_dbfs=-50.0):
    """Give CSV rows their audio: decode what the cache lacks, flag and trim by the rules above.

    Arguments
    ---------
    rows : list of meld.Row
        The rows (of every split) that have a clip.
    clips : dict
        MELD split -> {(dialogue, utterance): clip path} (``meld.Layout.clips``).
    audio_cache : str or Path
        Folder of the decoded wavs.
    num_workers : int
        Decoding processes.
    trim_miscut, miscut_margin, miscut_min_seconds, quiet_dbfs
        See :func:`m4ser_lobes.corpora.meld.prepare_meld`.

    Returns
    -------
    audio : dict
        utt_id -> :class:`AudioResult` of every row.
    skipped : dict
        utt_id -> ("undecodable", the decoder's message).
    media : dict
        utt_id -> (wav, duration, flags) of every other row; flags among ``bad_span``,
        ``miscut``, ``trimmed``, ``quiet``, in that order.
    """
    jobs = [(row.utt_id, str(clips[row.split][row.dialogue, row.utterance]),
             str(cache_path(audio_cache, row))) for row in rows]
    audio = convert_audio(jobs, num_workers)
    skipped = {r.utt_id: ("undecodable", r.error) for r in audio.values() if r.error is not None}
    media = {}
    for row in rows:
        if row.utt_id in skipped:
            continue
        result = audio[row.utt_id]
        wav, duration, flags = result.wav, result.duration, []
        span = round(row.end - row.start, 3) if None not in (row.start, row.end) else 0.0
        if span <= 0:
            flags.append("bad_span")
        if duration > max(span, 0.0) + miscut_margin and duration > miscut_min_seconds:
            flags.append("miscut")
            if row.split in trim_miscut and span > 0:
                wav, duration = trim(wav, audio_cache, row, span), span
                flags.append("trimmed")
        if result.rms_dbfs < quiet_dbfs:
            flags.append("quiet")
        media[row.utt_id] = (wav, duration, flags)
    return audio, skipped, media
