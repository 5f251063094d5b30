"""Output heads and masked pooling: the ER head (Eqs. 17–18) and the AED tagger (Eq. 2).

Shape legend: B batch, T frames or tokens, T_t text tokens, D width, C emotion classes.
Masks: ``pad_mask`` is True = padding.
"""

from __future__ import annotations

import torch
from torch import nn

#: AED tags of Eq. 2 (KEEP = 0, DELETE = 1, CHANGE = 2; design §2).
NUM_AED_TAGS = 3


def masked_mean(x, pad_mask=None):
    """Mean over the valid positions of each row (Eq. 17's pooling with padding).

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
    >>> masked_mean(x, pad_mask)  # last row is all padding
    tensor([[2.],
            [7.],
            [0.]])
    """
    if x.dim() != 3:
        raise ValueError(f"masked_mean expects x [B,T,D], got {tuple(x.shape)}")
    if pad_mask is None:
        return x.mean(dim=1)
    if pad_mask.shape != x.shape[:2] or pad_mask.dtype != torch.bool:
        raise ValueError(
            f"pad_mask must be a bool tensor {tuple(x.shape[:2])} (True = padding), got "
            f"{pad_mask.dtype} {tuple(pad_mask.shape)}"
        )
    valid = (~pad_mask).unsqueeze(-1)  # [B,T,1]
    summed = x.masked_fill(~valid, 0.0).sum(dim=1)  # [B,D]
    count = valid.sum(dim=1).clamp(min=1).to(x.dtype)  # [B,1]
    return summed / count


class EmotionHead(nn.Module):
    """Emotion classifier of Eq. 18: ``Dropout(p) → Linear(D, C)`` on the pooled H_ap.

    Arguments
    ---------
    d_model : int
        Width D of H_ap.
    num_classes : int
        Number C of emotion classes (4 for IEMOCAP, 7 for MELD).
    dropout : float
        Dropout before the linear layer (0.5 in Table I).

    Example
    -------
    >>> head = EmotionHead(d_model=32, num_classes=4)
    >>> head(torch.randn(6, 32)).shape
    torch.Size([6, 4])
    """

    def __init__(self, d_model, num_classes, dropout=0.5):
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_model, num_classes)

    def forward(self, pooled):
        """Return emotion logits.

        Arguments
        ---------
        pooled : torch.Tensor
            ``[B,D]`` pooled features H_ap.

        Returns
        -------
        torch.Tensor
            ``[B,C]`` logits (softmax of Eq. 18 left to the loss).
        """
        if pooled.dim() != 2 or pooled.shape[-1] != self.d_model:
            raise ValueError(
                f"EmotionHead expects pooled features [B,{self.d_model}], got {tuple(pooled.shape)}"
            )
        return self.linear(self.dropout(pooled))


class AEDHead(nn.Module):
    """ASR-error-detection tagger of Eq. 2: ``Linear(D, 3)`` on every text token.

    Arguments
    ---------
    d_model : int
        Width D of the text states H_T.
    dropout : float
        Dropout before the linear layer (the paper uses none).

    Example
    -------
    >>> head = AEDHead(d_model=32)
    >>> head(torch.randn(2, 9, 32)).shape  # KEEP / DELETE / CHANGE logits per token
    torch.Size([2, 9, 3])
    """

    def __init__(self, d_model, dropout=0.0):
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_model, NUM_AED_TAGS)

    def forward(self, text_states):
        """Return tag logits for every token.

        Arguments
        ---------
        text_states : torch.Tensor
            ``[B,T_t,D]`` text encoder output H_T.

        Returns
        -------
        torch.Tensor
            ``[B,T_t,3]`` logits; padded tokens get logits that the loss ignores (label -100).
        """
        if text_states.dim() != 3 or text_states.shape[-1] != self.d_model:
            raise ValueError(
                f"AEDHead expects text states [B,T_t,{self.d_model}], got "
                f"{tuple(text_states.shape)}"
            )
        return self.linear(self.dropout(text_states))
