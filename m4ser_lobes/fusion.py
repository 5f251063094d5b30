"""Multimodal fusion: three CME blocks, the MIR generator and masked pooling (paper §III-E/F, Eqs. 8–17).

::

    Ĥ_S^spe = CME1(q=H_T, kv=H_S)            [B,T_t,D]   Eq. 8
    H_S^spe = CME2(q=H_S, kv=Ĥ_S^spe)        [B,T_s,D]   Eq. 9   modality-specific (MSR)
    H_T^spe = CME3(q=H_S, kv=H_T)            [B,T_s,D]   Eq. 10  modality-specific (MSR)
    H_inv   = MIR(H_S, H_T, H_S^spe, H_T^spe) [B,T_s,D]  Eqs. 11–15 modality-invariant (MIR)
    H_ap    = masked mean of [H_S^spe ; H_T^spe ; H_inv] on time   Eqs. 16–17

Every structural row of Table IV is a constructor switch (docs/design.md §3.2):

==============================  =============================================  ====================
Table IV row                    switches                                       pooled
==============================  =============================================  ====================
full M4SER                      ``modalities="both"``                          [H_S^spe;H_T^spe;H_inv]
B(1) w/o MSR                    ``use_msr=False``                              H_inv
B(2) w/o MIR                    ``use_mir=False``                              [H_S^spe;H_T^spe]
B(3) w/o MSR & MIR, A(3) concat ``use_msr=False, use_mir=False``               [pool(H_S) ; pool(H_T)]
A(1) speech only                ``modalities="speech"``                        H_S
A(2) text only                  ``modalities="text"``                          H_T (specials excluded)
==============================  =============================================  ====================

Shape legend: B batch, T_s speech frames, T_t tokens, D width. Masks: True = padding.
"""

from typing import NamedTuple, Optional

import torch
from torch import nn

from m4ser_lobes import switches
from m4ser_lobes.cme import CrossModalEncoder
from m4ser_lobes.masks import mean_over_time
from m4ser_lobes.mir import MIRGenerator
from m4ser_lobes.switches import MODALITIES, uses_modality  # noqa: F401  (the switches' home)


class FusionOutput(NamedTuple):
    """What :class:`MultimodalFusion` returns; tensors not computed by an ablation are None."""

    pooled: torch.Tensor  # H_ap [B, D_out]
    speech_specific: Optional[torch.Tensor] = None  # H_S^spe [B, T_s, D]
    text_specific: Optional[torch.Tensor] = None  # H_T^spe [B, T_s, D]
    invariant: Optional[torch.Tensor] = None  # H_inv [B, T_s, D]
    hybrid: Optional[torch.Tensor] = None  # H_ST [B, T_s, D]
    speech_pad_mask: Optional[torch.Tensor] = None  # [B, T_s], True = padding


class MultimodalFusion(nn.Module):
    """The MF module of M4SER and its Table IV ablations.

    Arguments
    ---------
    d_model : int
        Width D of H_S and H_T.
    nhead : int
        Attention heads of the CMEs and HMAs (12, Table I).
    cme_layers : int
        Layers per CME block.
    dim_feedforward : int, optional
        CME FFN width (4·D by default).
    dropout : float
        Dropout inside CME and HMA attention.
    modalities : str
        ``"both"``, ``"speech"`` or ``"text"`` (Table IV A(1), A(2)).
    use_msr : bool
        Pool the modality-specific representations (Table IV B(1) when False).
    use_mir : bool
        Generate and pool H_inv (Table IV B(2) when False).
    hst_text_source : str
        How H_ST sees the text, see :class:`m4ser_lobes.mir.MIRGenerator`.

    Example
    -------
    >>> fusion = MultimodalFusion(d_model=16, nhead=4).eval()
    >>> h_s, h_t = torch.randn(2, 6, 16), torch.randn(2, 4, 16)
    >>> s_pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    >>> t_pad = torch.tensor([[False] * 4, [False] * 2 + [True] * 2])
    >>> out = fusion(h_s, s_pad, h_t, t_pad)
    >>> out.pooled.shape, out.speech_specific.shape, out.text_specific.shape, out.invariant.shape
    (torch.Size([2, 16]), torch.Size([2, 6, 16]), torch.Size([2, 6, 16]), torch.Size([2, 6, 16]))
    >>> MultimodalFusion(16, 4, use_msr=False, use_mir=False).output_dim  # concat baseline
    32
    """

    def __init__(
        self,
        d_model,
        nhead=12,
        cme_layers=1,
        dim_feedforward=None,
        dropout=0.1,
        modalities="both",
        use_msr=True,
        use_mir=True,
        hst_text_source="align",
    ):
        super().__init__()
        if modalities not in MODALITIES:
            raise ValueError(f"modalities must be one of {MODALITIES}, got {modalities!r}")
        self.modalities = modalities
        self.use_msr = use_msr
        self.use_mir = use_mir
        self.interacts = modalities == "both" and (use_msr or use_mir)
        self.output_dim = 2 * d_model if modalities == "both" and not self.interacts else d_model
        if self.interacts:
            cme = dict(
                d_model=d_model,
                nhead=nhead,
                num_layers=cme_layers,
                dim_feedforward=dim_feedforward,
                dropout=dropout,
            )
            self.cme_text_to_speech = CrossModalEncoder(**cme)  # Eq. 8
            self.cme_speech_specific = CrossModalEncoder(**cme)  # Eq. 9
            self.cme_text_specific = CrossModalEncoder(**cme)  # Eq. 10
        if self.produces_invariant:
            self.mir = MIRGenerator(d_model, nhead, dropout, hst_text_source)

    @property
    def produces_invariant(self):
        """Whether H_inv exists (:func:`m4ser_lobes.switches.produces_invariant`): what the GAN
        acts on. The rule built on it, GAN needs H_inv, is ``switches.check_switches``.
        """
        return switches.produces_invariant(self.modalities, self.use_mir)

    @property
    def needs_speech(self):
        """Whether the speech encoder is used at all."""
        return uses_modality(self.modalities, "speech")

    @property
    def needs_text(self):
        """Whether the text encoder is used at all."""
        return uses_modality(self.modalities, "text")

    def forward(
        self, speech_states, speech_pad_mask, text_states, text_pad_mask, text_pool_mask=None
    ):
        """Fuse H_S [B,T_s,D] and H_T [B,T_t,D] given their pad masks; see the module table.

        ``text_pool_mask`` [B,T_t] (True = excluded) lets text-only and concat pooling skip the
        special tokens; it defaults to ``text_pad_mask``.
        """
        if text_pool_mask is None:
            text_pool_mask = text_pad_mask
        if self.modalities == "speech":
            return FusionOutput(
                mean_over_time(speech_states, speech_pad_mask), speech_pad_mask=speech_pad_mask
            )
        if self.modalities == "text":
            return FusionOutput(mean_over_time(text_states, text_pool_mask))
        if speech_states.shape[-1] != text_states.shape[-1]:
            raise ValueError(
                f"speech width {speech_states.shape[-1]} != text width {text_states.shape[-1]}: "
                "set the encoders' output_dim to the model width"
            )
        if not self.interacts:  # "Speech & Text + Concat" baseline
            pooled = torch.cat(
                [
                    mean_over_time(speech_states, speech_pad_mask),
                    mean_over_time(text_states, text_pool_mask),
                ],
                dim=-1,
            )
            return FusionOutput(pooled, speech_pad_mask=speech_pad_mask)

        speech_hat = self.cme_text_to_speech(text_states, speech_states, speech_pad_mask)
        speech_specific = self.cme_speech_specific(speech_states, speech_hat, text_pad_mask)
        text_specific = self.cme_text_specific(speech_states, text_states, text_pad_mask)
        invariant = hybrid = None
        if self.use_mir:
            invariant, hybrid = self.mir(speech_states, speech_pad_mask, text_states,
                                         text_pad_mask, speech_specific, text_specific)
        parts = [speech_specific, text_specific] if self.use_msr else []
        if invariant is not None:
            parts.append(invariant)
        # Eq. 16-17: all parts share the speech mask, so the masked mean over the 3·T_s fused
        # frames is the mean of the parts' masked means.
        pooled = torch.stack([mean_over_time(p, speech_pad_mask) for p in parts]).mean(dim=0)
        return FusionOutput(
            pooled=pooled,
            speech_specific=speech_specific,
            text_specific=text_specific,
            invariant=invariant,
            hybrid=hybrid,
            speech_pad_mask=speech_pad_mask,
        )
