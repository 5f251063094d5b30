"""Reading audio the way every part of the plugin needs it: 16 kHz mono float32, checked.

``torchaudio.load`` needs torchcodec, which these machines lack, so files are read with soundfile
(what SpeechBrain 1.1's ``read_audio`` uses) and resampled with ``torchaudio.functional.resample``.
"""

import os

import numpy as np
import torch

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the problem."""


def crop(wav, max_samples, random_start=False):
    """At most ``max_samples`` samples of ``wav``: the prefix, or a window at a random start.

    With ``random_start`` the window's first sample is drawn uniformly among the
    ``len(wav) - max_samples + 1`` valid offsets with torch's global RNG, which SpeechBrain seeds
    (``seed`` in the YAML; DataLoader workers derive their seeds from it), so crops are
    reproducible. Signals no longer than ``max_samples`` are returned whole.

    Arguments
    ---------
    wav : torch.Tensor
        [L] waveform.
    max_samples : int
        Window length (>= 1).
    random_start : bool
        Random window (training augmentation) instead of the first ``max_samples`` samples.

    Returns
    -------
    torch.Tensor
        [min(L, max_samples)] waveform (a view of ``wav``).

    Example
    -------
    >>> wav = torch.arange(10.0)
    >>> crop(wav, 4).tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> _ = torch.manual_seed(0)
    >>> window = crop(wav, 4, random_start=True)
    >>> len(window), bool((window.diff() == 1).all())
    (4, True)
    >>> crop(wav, 20, random_start=True).shape
    torch.Size([10])
    """
    max_samples = int(max_samples)
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1, got {max_samples}")
    excess = wav.shape[0] - max_samples
    if excess <= 0:
        return wav
    start = int(torch.randint(excess + 1, ())) if random_start else 0
    return wav[start : start + max_samples]


def load_audio(path, sample_rate=SAMPLE_RATE, max_seconds=None, random_crop=False):
    """Read an audio file as a mono waveform at ``sample_rate``.

    Any sample rate and channel count is accepted (channels are averaged). Missing files,
    files soundfile cannot decode, empty signals and signals with NaN/Inf raise
    :class:`AudioError` naming the file.

    Arguments
    ---------
    path : str or Path
        Audio file (wav, flac, ogg... anything libsndfile reads).
    sample_rate : int
        Target rate.
    max_seconds : float, optional
        Keep at most this many seconds (see :func:`crop`); None keeps the whole signal.
    random_crop : bool
        Take the ``max_seconds`` window at a random offset instead of from the start.

    Returns
    -------
    torch.Tensor
        [L] float32 waveform.

    Example
    -------
    >>> import soundfile as sf
    >>> path = getfixture("tmp_path") / "stereo.wav"
    >>> sf.write(path, np.zeros((8000, 2), dtype="float32") + 0.1, 8000)
    >>> load_audio(path).shape
    torch.Size([16000])
    >>> load_audio(getfixture("tmp_path") / "nope.wav")
    Traceback (most recent call last):
    ...
    m4ser_lobes.data.audio.AudioError: .../nope.wav: file not found
    """
    import soundfile as sf
    import torchaudio

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"{path}: file not found")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for undecodable input
        raise AudioError(
            f"{path}: not a readable audio file ({err}); convert it to 16 kHz mono wav, "
            "e.g. `ffmpeg -i IN -ac 1 -ar 16000 OUT.wav`"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the signal is empty")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: the signal contains NaN or Inf samples")
    wav = torch.from_numpy(data.mean(axis=1))
    if rate != sample_rate:
        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    if max_seconds is not None:
        if int(max_seconds * sample_rate) < 1:
            raise ValueError(f"max_seconds must be > 0 (or None for no crop), got {max_seconds}")
        wav = crop(wav, int(max_seconds * sample_rate), random_start=random_crop)
    return wav
