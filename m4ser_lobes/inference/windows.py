"""The long-audio policy of ``M4SERClassifier.classify_file`` (:func:`split_windows`).

A file longer than ``window_seconds`` (the training crop, ``max_audio_seconds``) is cut into windows
of exactly that length, never shorter: ``ceil(length / window_seconds)`` windows, at most
``max_windows``, whose starts are evenly spaced so that the first begins at the start of the file
and the last ends at its end (they overlap a little when they cover the file, and sample it evenly
when ``max_windows`` caps them). They are classified ``batch_size`` at a time and their
probabilities averaged. Memory is therefore bounded by ``batch_size`` windows whatever the file
length (the decoded file itself is held in RAM, about 230 MB per hour at 16 kHz). Without a given
transcript each window is transcribed separately and the window texts are joined (words in the
overlaps may repeat); a given transcript is paired with every window. A file no longer than
``window_seconds`` is classified whole, as the training Brain's test stage crops it.

Shape legend: L samples, N windows.
"""

from __future__ import annotations

import math

import torch


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
