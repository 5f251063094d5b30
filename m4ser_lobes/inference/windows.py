"""The long-audio policy of ``M4SERClassifier.classify_file``: :func:`read_windows` reads a file
(the one place inference reads audio), :func:`split_windows` cuts it, :func:`mean_probabilities`
averages the windows' predictions.

A file longer than ``window_seconds`` (the training crop, ``max_audio_seconds``) is cut into windows
of exactly that length, never shorter: ``ceil(length / window_seconds)`` windows, at most
``max_windows``, whose starts are evenly spaced so that the first begins at the start of the file
and the last ends at its end (they overlap a little when they cover the file, and sample it evenly
when ``max_windows`` caps them). They are classified ``batch_size`` at a time and their
probabilities averaged. Memory is therefore bounded by ``batch_size`` windows whatever the file
length (the decoded file itself is held in RAM, about 230 MB per hour at 16 kHz). The text is the
file's, never a window's: a given transcript, or, without one, the whole file transcribed once
(the transcriber cuts long audio at quiet points, :func:`m4ser_lobes.text.transcribers.
split_long_audio`), is paired with every window; the text encoder reads its first ``max_tokens``
tokens. Transcribing each window would cut words at the window edges and repeat the words of the
overlaps ("laundry cording"). A file no longer than ``window_seconds`` is classified whole, as
the training Brain's test stage crops it.

Shape legend: L samples, N windows.
"""

from __future__ import annotations

import logging
import math
import os

import torch

from m4ser_lobes.data.audio import AudioError, load_audio

logger = logging.getLogger(__name__)


def check_window_settings(window_seconds, max_windows, batch_size, where="hyperparams.yaml"):
    """Refuse window settings that cannot classify anything (one line naming the key).

    Example
    -------
    >>> check_window_settings(20.0, 8, 8)
    >>> check_window_settings(0, 8, 8, "export/hyperparams.yaml")
    Traceback (most recent call last):
    ...
    ValueError: export/hyperparams.yaml: window_seconds is 0; it must be a positive number of seconds (override it with --window-seconds or overrides={"window_seconds": 20.0})
    """
    checks = (
        ("window_seconds", window_seconds, float, 0.0, "a positive number of seconds", 20.0),
        ("max_windows", max_windows, int, 1, "a whole number >= 1", 8),
        ("batch_size", batch_size, int, 1, "a whole number >= 1", 8),
    )
    for key, value, kind, low, what, example in checks:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value > low if kind is float else value >= low)
        ok = ok and (kind is float or float(value).is_integer())
        if not ok:
            flag = "--" + key.replace("_", "-")
            how = f"{flag} or " if key != "batch_size" else ""
            raise ValueError(
                f"{where}: {key} is {value!r}; it must be {what} (override it with {how}"
                f'overrides={{"{key}": {example}}})'
            )


def read_windows(path, sample_rate, window_seconds, max_windows, min_samples=1):
    """Read an audio file for inference and cut it into windows (the long-audio policy).

    Every inference path that starts from a file (``classify_file``, ``transcribe_file``,
    ``m4ser-classify``) reads it here, once.

    Arguments
    ---------
    path : str or Path
        Audio file of any sample rate and channel count
        (:func:`m4ser_lobes.data.audio.load_audio`: resampled, channels averaged).
    sample_rate : int
        The model's rate (16 kHz).
    window_seconds : float
        Window length (the training crop).
    max_windows : int
        Cap on the number of windows.
    min_samples : int
        Shortest input the speech encoder accepts.

    Returns
    -------
    audio : torch.Tensor
        [L] the whole file at ``sample_rate`` (what the ASR transcribes).
    windows : torch.Tensor
        [N, window] windows ([1, L] for a file no longer than ``window_seconds``).

    Raises
    ------
    m4ser_lobes.data.audio.AudioError
        The file is missing, not audio, empty, not finite or too short; the message names it.
    """
    wav = load_audio(path, sample_rate=sample_rate)
    if wav.shape[0] < min_samples:
        raise AudioError(
            f"{os.fspath(path)}: {wav.shape[0] / sample_rate:.3f} s of audio is too short; the "
            f"speech encoder needs at least {min_samples / sample_rate:.3f} s"
        )
    windows = split_windows(wav, int(window_seconds * sample_rate), int(max_windows))
    if windows.shape[0] > 1:
        logger.info(
            "%s: %.1f s classified as %d windows of %.1f s",
            path,
            wav.shape[0] / sample_rate,
            windows.shape[0],
            windows.shape[1] / sample_rate,
        )
    return wav, windows


def mean_probabilities(probabilities, windows, texts, batch_size):
    """The probabilities of a file: its windows' averaged, ``batch_size`` windows a pass.

    Arguments
    ---------
    probabilities : callable
        ``(wavs [b, L], wav_lens [b], texts) -> [b, C]``, as
        ``M4SERClassifier.emotion_probabilities``.
    windows : torch.Tensor
        [N, window] from :func:`read_windows`.
    texts : list
        One text (or None) per window (the file's text, paired with each).
    batch_size : int

    Returns
    -------
    torch.Tensor
        [1, C].

    Example
    -------
    >>> fake = lambda wavs, lens, texts: wavs[:, :2]
    >>> mean_probabilities(fake, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), [None] * 3, 2)
    tensor([[0.5000, 0.5000]])
    """
    ones = torch.ones(windows.shape[0], device=windows.device)
    step = max(1, int(batch_size))
    parts = [
        probabilities(windows[i : i + step], ones[i : i + step], texts[i : i + step])
        for i in range(0, windows.shape[0], step)
    ]
    return torch.cat(parts).mean(dim=0, keepdim=True)


def split_windows(wav, window, max_windows):
    """Cut a long waveform into windows of exactly ``window`` samples (the long-audio policy).

    ``N = min(ceil(L / window), max_windows)`` windows of ``window`` samples whose starts are
    evenly spaced from 0 to ``L - window``: the first begins at the first sample and the last
    ends at the last one (a single window, ``max_windows=1``, is the first ``window`` samples,
    the Brain's crop). When ``N`` windows suffice they cover the whole file (overlapping by
    ``N * window - L`` samples in all); otherwise they sample it evenly. No window is shorter
    than the training crop, whatever ``L``.

    Arguments
    ---------
    wav : torch.Tensor
        [L] waveform.
    window : int
        Window length in samples.
    max_windows : int
        Cap on N.

    Returns
    -------
    torch.Tensor
        [N, window] windows (a file no longer than ``window``: [1, L], itself).

    Example
    -------
    >>> split_windows(torch.arange(10.0), window=4, max_windows=8)  # 3 windows of 4 cover 10
    tensor([[0., 1., 2., 3.],
            [3., 4., 5., 6.],
            [6., 7., 8., 9.]])
    >>> split_windows(torch.arange(43.0), window=40, max_windows=8)[:, [0, -1]]  # 4.3 s, 4 s
    tensor([[ 0., 39.],
            [ 3., 42.]])
    >>> split_windows(torch.arange(100.0), window=4, max_windows=3)[:, 0]  # 3 evenly spaced
    tensor([ 0., 48., 96.])
    >>> split_windows(torch.ones(3), window=4, max_windows=3).shape
    torch.Size([1, 3])
    """
    if window < 1 or max_windows < 1:
        raise ValueError(f"window and max_windows must be >= 1, got {window} and {max_windows}")
    length = wav.shape[0]
    if length <= window:
        return wav.unsqueeze(0)
    count = min(math.ceil(length / window), max_windows)
    starts = torch.linspace(0, length - window, count).round().long().tolist()
    return torch.stack([wav[s : s + window] for s in starts])
