"""MIR generator with hybrid-modal attention (HMA), paper §III-F, Fig. 4, Eqs. 11–15.

Everything here lives on the speech time axis (T_s), so one speech pad mask serves it all::

    H_ST      = Linear_{2D->D}(LN([H_S ; Align(H_T)]))                       Eq. 11, docs/design.md §3.1
    H_i^share = MHA(q=H_ST, kv=H_i^spe, speech keys masked)                   Eq. 14, i in {S, T}
    H_i^b     = H_i^share * sigmoid(Conv1x1_{2D->D}([H_i^spe ; H_ST]))        Eq. 15
    H_inv     = LN(H_ST + sum_i PReLU(Conv1x1_{D->D}(H_i^b)))                 Eq. 12

``Align(H_T) = softmax(H_S H_T^T / sqrt(D), text keys masked) H_T`` is parameter-free
(docs/design.md §3.1); the YAML alternative ``hst_text_source: text_specific`` uses H_T^spe (Eq. 10) instead.
1x1 convolutions over time are written as ``nn.Linear`` on the feature axis (the same operator).

Shape legend: B batch, T_s speech frames, T_t tokens, D width. Masks: True = padding.
"""

import math
from typing import NamedTuple

import torch
from torch import nn

HST_TEXT_SOURCES = ("align", "text_specific")


class MIROutput(NamedTuple):
    """Outputs of :class:`MIRGenerator`, both [B, T_s, D]."""

    invariant: torch.Tensor  # H_inv
    hybrid: torch.Tensor  # H_ST


def align_text_to_speech(speech_states, text_states, text_pad_mask):
    """Attend from every speech frame to the text tokens (no parameters): Align(H_T).

    Arguments
    ---------
    speech_states : torch.Tensor
        [B, T_s, D] H_S (queries).
    text_states : torch.Tensor
        [B, T_t, D] H_T (keys and values).
    text_pad_mask : torch.Tensor
        [B, T_t] bool, True = padding.

    Returns
    -------
    torch.Tensor
        [B, T_s, D] text aligned to speech frames.

    Example
    -------
    >>> s, t = torch.randn(2, 6, 8), torch.randn(2, 4, 8)
    >>> mask = torch.tensor([[False] * 4, [False, False, True, True]])
    >>> aligned = align_text_to_speech(s, t, mask)
    >>> aligned.shape
    torch.Size([2, 6, 8])
    >>> t2 = t.clone(); t2[1, 2:] = 99.0   # padded tokens do not matter
    >>> torch.allclose(aligned, align_text_to_speech(s, t2, mask))
    True
    """
    scores = speech_states @ text_states.transpose(1, 2) / math.sqrt(speech_states.shape[-1])
    scores = scores.masked_fill(text_pad_mask.unsqueeze(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ text_states.masked_fill(
        text_pad_mask.unsqueeze(-1), 0.0
    )


class HybridModalAttention(nn.Module):
    """HMA for one modality i: H_i^b = MHA(H_ST, H_i^spe) * sigmoid(Conv([H_i^spe ; H_ST])).

    Arguments
    ---------
    d_model : int
        Width D.
    nhead : int
        Attention heads.
    dropout : float
        Attention dropout.

    Example
    -------
    >>> hma = HybridModalAttention(16, nhead=4)
    >>> h_st, h_spe = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    >>> hma(h_st, h_spe, torch.zeros(2, 5, dtype=torch.bool)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, d_model, nhead=12, dropout=0.1):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.gate = nn.Linear(2 * d_model, d_model)  # Conv1x1_{2D->D} of Eq. 15

    def forward(self, hybrid, specific, speech_pad_mask):
        """[B,T_s,D] H_ST, [B,T_s,D] H_i^spe, [B,T_s] mask -> [B,T_s,D] H_i^b."""
        shared, _ = self.attention(
            hybrid, specific, specific, key_padding_mask=speech_pad_mask, need_weights=False
        )  # Eq. 14
        gate = torch.sigmoid(self.gate(torch.cat([specific, hybrid], dim=-1)))
        return shared * gate  # Eq. 15


class MIRGenerator(nn.Module):
    """Generate the modality-invariant representation H_inv [B,T_s,D] (Eqs. 11–15).

    Arguments
    ---------
    d_model, nhead, dropout
        Width D, attention heads and attention dropout of both :class:`HybridModalAttention`
        blocks (D is also the width of H_ST and H_inv).
    hst_text_source : str
        ``"align"`` (default, docs/design.md §3.1) or ``"text_specific"`` (use H_T^spe as Align(H_T)).

    Example
    -------
    >>> gen = MIRGenerator(16, nhead=4).eval()
    >>> h_s, h_t = torch.randn(2, 6, 16), torch.randn(2, 4, 16)
    >>> s_pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    >>> t_pad = torch.tensor([[False] * 4, [False] * 2 + [True] * 2])
    >>> out = gen(h_s, s_pad, h_t, t_pad, torch.randn(2, 6, 16), torch.randn(2, 6, 16))
    >>> out.invariant.shape, out.hybrid.shape
    (torch.Size([2, 6, 16]), torch.Size([2, 6, 16]))
    """

    def __init__(self, d_model, nhead=12, dropout=0.1, hst_text_source="align"):
        super().__init__()
        if hst_text_source not in HST_TEXT_SOURCES:
            raise ValueError(
                f"hst_text_source must be one of {HST_TEXT_SOURCES}, got {hst_text_source!r}"
            )
        self.hst_text_source = hst_text_source
        self.hybrid_norm = nn.LayerNorm(2 * d_model)
        self.hybrid_proj = nn.Linear(2 * d_model, d_model)  # FC of Eq. 11
        self.hma = nn.ModuleDict(
            {m: HybridModalAttention(d_model, nhead, dropout) for m in ("speech", "text")}
        )
        self.out = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(d_model, d_model), nn.PReLU()) for m in ("speech", "text")}
        )  # PReLU(Conv1x1_{D->D}) of Eq. 12
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        speech_states,
        speech_pad_mask,
        text_states,
        text_pad_mask,
        speech_specific,
        text_specific,
    ):
        """Return ``MIROutput(invariant, hybrid)``, both [B,T_s,D] (padded frames: mask them)."""
        if self.hst_text_source == "align":
            text_on_speech = align_text_to_speech(speech_states, text_states, text_pad_mask)
        else:
            text_on_speech = text_specific
        hybrid = self.hybrid_proj(
            self.hybrid_norm(torch.cat([speech_states, text_on_speech], dim=-1))
        )  # H_ST, Eq. 11
        residual = hybrid
        for modality, specific in (("speech", speech_specific), ("text", text_specific)):
            blended = self.hma[modality](hybrid, specific, speech_pad_mask)  # H_i^b
            residual = residual + self.out[modality](blended)
        return MIROutput(invariant=self.norm(residual), hybrid=hybrid)  # Eq. 12
