"""Frame-level modality discriminator D (Sec. III-G, Eq. 20).

D tells speech-specific frames (label 1) from text-specific frames (label 0); the MIR generator
is trained to make D undecided on the invariant frames H_inv (D = 0.5). The paper's sigmoid is
left to the losses, which work on logits (``logsigmoid``) for numerical stability
(:func:`m4ser_lobes.losses.gan_losses`).

Shape legend: B batch, T frames (T_s for the fusion outputs), D width.
"""

from __future__ import annotations

import torch  # noqa: F401  (the doctests use it)
from torch import nn


class ModalityDiscriminator(nn.Module):
    """Per-frame MLP ``Linear(D, hidden) → ReLU → Linear(hidden, 1)`` returning logits.

    ``hidden = 256`` matches Table V's "+GAN & LCL" budget of +0.2 M parameters
    (197,121 at D = 768; docs/design.md §2). Padded frames get logits too; the losses mask them out.

    Arguments
    ---------
    d_model : int
        Width D of the frames (H_S^spe, H_T^spe, H_inv).
    hidden : int
        Width of the hidden layer.

    Example
    -------
    >>> D = ModalityDiscriminator(d_model=768)
    >>> sum(p.numel() for p in D.parameters())
    197121
    >>> D(torch.randn(2, 7, 768)).shape  # logits, no sigmoid
    torch.Size([2, 7])
    >>> torch.sigmoid(D(torch.randn(2, 7, 768))).shape  # D(x) in (0, 1) per frame
    torch.Size([2, 7])
    """

    def __init__(self, d_model, hidden=256):
        super().__init__()
        self.d_model = d_model
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        """Return one logit per frame.

        Arguments
        ---------
        x : torch.Tensor
            ``[B,T,D]`` frames.

        Returns
        -------
        torch.Tensor
            ``[B,T]`` logits z, with D(x) = sigmoid(z).
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"ModalityDiscriminator expects frames [B,T,{self.d_model}], got {tuple(x.shape)}"
            )
        return self.net(x).squeeze(-1)  # [B,T,1] -> [B,T]
