"""Output heads: the ER head (Eq. 18) and the AED tagger (Eq. 2).

The pooling that feeds the ER head (Eq. 17) is :func:`m4ser_lobes.masks.mean_over_time`; the AED
tag set is :class:`m4ser_lobes.text.tags.AEDTag`.

Shape legend: B batch, T_t text tokens, D width, C emotion classes.
"""

from __future__ import annotations

import torch  # noqa: F401  (the doctests use it)
from torch import nn

from m4ser_lobes.text.tags import NUM_AED_TAGS


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
            ``[B,T_t,3]`` logits; padded tokens get logits that the loss ignores (label
            :data:`~m4ser_lobes.text.tags.IGNORE_INDEX`).
        """
        if text_states.dim() != 3 or text_states.shape[-1] != self.d_model:
            raise ValueError(
                f"AEDHead expects text states [B,T_t,{self.d_model}], got "
                f"{tuple(text_states.shape)}"
            )
        return self.linear(self.dropout(text_states))
