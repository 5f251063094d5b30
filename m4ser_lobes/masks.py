"""Masks, converted once at the boundary.

SpeechBrain batches carry *relative* lengths in [0, 1]; every lobe of this package takes boolean
pad masks where **True means padding** (the polarity ``nn.MultiheadAttention`` expects). The two
functions here are the only place where one becomes the other.

Shape legend: B batch, T time (samples, frames or tokens).
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
