"""Masks, converted once at the boundary, and every masked reduction of the package.

SpeechBrain batches carry *relative* lengths in [0, 1]; every lobe of this package takes boolean
pad masks where **True means padding** (the polarity ``nn.MultiheadAttention`` expects).
:func:`relative_to_absolute` and :func:`lengths_to_pad_mask` are the only place where one
becomes the other. The reductions say what they average over:

==================================  ================  =========================================
function                            result            averages over
==================================  ================  =========================================
:func:`mean_over_time`              ``[B,D]``         each sequence's valid positions (pooling)
:func:`mean_over_valid_positions`   scalar            the valid positions of the whole batch
:func:`mean_or_zero`                scalar            values already selected (0 when none)
==================================  ================  =========================================

Padded positions never reach a result: they are zeroed (:func:`mean_over_time`) or dropped
(:func:`mean_over_valid_positions`) before any sum, so their content, even NaN, changes nothing.

Shape legend: B batch, T time (samples, frames or tokens), D width, N selected values.
"""

import torch


def relative_to_absolute(rel_lengths, max_len):
    """Turn SpeechBrain relative lengths into absolute lengths.

    Arguments
    ---------
    rel_lengths : torch.Tensor
        [B] relative lengths in (0, 1], the longest item is 1.0.
    max_len : int
        Padded length T of the batch.

    Returns
    -------
    torch.Tensor
        [B] long absolute lengths, at least 1.

    Example
    -------
    >>> relative_to_absolute(torch.tensor([1.0, 0.5]), 8)
    tensor([8, 4])
    """
    if rel_lengths.dim() != 1:
        raise ValueError(f"relative lengths must be [B], got shape {tuple(rel_lengths.shape)}")
    lengths = torch.round(rel_lengths.float() * max_len).long()
    return lengths.clamp(min=1, max=max_len)


def lengths_to_pad_mask(lengths, max_len=None):
    """Pad mask from absolute lengths: True = padding.

    Arguments
    ---------
    lengths : torch.Tensor
        [B] absolute lengths.
    max_len : int, optional
        T; defaults to ``lengths.max()``.

    Returns
    -------
    torch.Tensor
        [B, T] bool, True where the position is padding.

    Example
    -------
    >>> lengths_to_pad_mask(torch.tensor([3, 1]), 4)
    tensor([[False, False, False,  True],
            [False,  True,  True,  True]])
    """
    if max_len is None:
        max_len = int(lengths.max())
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) >= lengths.unsqueeze(1)


def check_pad_mask(pad_mask, shape=None):
    """Raise ``ValueError`` unless ``pad_mask`` is a bool ``[B,T]`` mask (of ``shape`` if given).

    Example
    -------
    >>> check_pad_mask(torch.zeros(2, 3, dtype=torch.bool), (2, 3))
    >>> check_pad_mask(torch.zeros(2, 3))
    Traceback (most recent call last):
    ...
    ValueError: pad_mask must be a bool tensor [B,T] with True = padding; got torch.float32 (2, 3)
    """
    wrong_shape = pad_mask.dim() != 2 if shape is None else tuple(pad_mask.shape) != tuple(shape)
    if wrong_shape or pad_mask.dtype != torch.bool:
        expected = "[B,T]" if shape is None else str(tuple(shape))
        raise ValueError(
            f"pad_mask must be a bool tensor {expected} with True = padding; got "
            f"{pad_mask.dtype} {tuple(pad_mask.shape)}"
        )


def mean_over_time(x, pad_mask=None):
    """Mean of each sequence over its valid positions (Eq. 17's pooling with padding).

    Padded positions are zeroed before summing, so their content never matters; a row that
    is entirely padding pools to zeros (not NaN).

    Arguments
    ---------
    x : torch.Tensor
        ``[B,T,D]`` sequence.
    pad_mask : torch.Tensor, optional
        ``[B,T]`` bool, True = padding. None = every position valid.

    Returns
    -------
    torch.Tensor
        ``[B,D]`` pooled vectors.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [3.0], [1e4]], [[5.0], [7.0], [9.0]], [[2.0], [2.0], [2.0]]])
    >>> pad_mask = torch.tensor([[False, False, True], [False, False, False], [True, True, True]])
    >>> mean_over_time(x, pad_mask)  # last row is all padding
    tensor([[2.],
            [7.],
            [0.]])
    """
    if x.dim() != 3:
        raise ValueError(f"mean_over_time expects x [B,T,D], got {tuple(x.shape)}")
    if pad_mask is None:
        return x.mean(dim=1)
    check_pad_mask(pad_mask, x.shape[:2])
    valid = (~pad_mask).unsqueeze(-1)  # [B,T,1]
    summed = x.masked_fill(~valid, 0.0).sum(dim=1)  # [B,D]
    count = valid.sum(dim=1).clamp(min=1).to(x.dtype)  # [B,1]
    return summed / count


def mean_or_zero(values):
    """Mean of ``values [N]`` (already selected); an exact 0, still in the graph, when N == 0.

    Example
    -------
    >>> mean_or_zero(torch.tensor([1.0, 2.0])), mean_or_zero(torch.zeros(0))
    (tensor(1.5000), tensor(0.))
    """
    return values.sum() / max(values.numel(), 1)


def mean_over_valid_positions(values, pad_mask):
    """Mean of ``values [B,T]`` over the valid positions of the whole batch (the E[·] of Eq. 20).

    Every valid position weighs the same, whichever sequence it belongs to. Padded entries are
    never read (they are dropped before any arithmetic), so garbage or even NaN there changes
    nothing. With no valid position at all the result is an exact 0.

    Arguments
    ---------
    values : torch.Tensor
        ``[B,T]`` per-position values.
    pad_mask : torch.Tensor
        ``[B,T]`` bool, True = padding.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> values = torch.tensor([[1.0, 3.0, 1e4], [5.0, 1e4, 1e4]])
    >>> pad_mask = torch.tensor([[False, False, True], [False, True, True]])
    >>> mean_over_valid_positions(values, pad_mask)  # (1 + 3 + 5) / 3, not the mean of 2 and 5
    tensor(3.)
    """
    check_pad_mask(pad_mask)
    if values.shape != pad_mask.shape:
        raise ValueError(
            f"values {tuple(values.shape)} must match pad_mask {tuple(pad_mask.shape)}"
        )
    return mean_or_zero(values[~pad_mask])  # valid positions of the whole batch
