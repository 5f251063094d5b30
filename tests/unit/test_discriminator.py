"""Tests of m4ser_lobes.discriminator.ModalityDiscriminator (Sec. III-G)."""

import pytest
import torch

from m4ser_lobes.discriminator import ModalityDiscriminator
from m4ser_lobes.losses import gan_losses


@pytest.mark.parametrize("B,T,d", [(1, 1, 16), (3, 7, 32), (2, 11, 24)])
def test_shapes(B, T, d):
    D = ModalityDiscriminator(d)
    logits = D(torch.randn(B, T, d))
    assert logits.shape == (B, T)


@pytest.mark.parametrize("d,hidden", [(768, 256), (32, 256), (32, 8)])
def test_param_count(d, hidden):
    D = ModalityDiscriminator(d, hidden=hidden)
    assert sum(p.numel() for p in D.parameters()) == d * hidden + hidden + hidden + 1


def test_frames_are_independent():
    # per-frame MLP: a frame's logit does not depend on its neighbours or on the batch
    torch.manual_seed(0)
    D = ModalityDiscriminator(16)
    x = torch.randn(2, 5, 16)
    y = x.clone()
    y[:, 3:] = 1e3
    torch.testing.assert_close(D(x)[:, :3], D(y)[:, :3])
    torch.testing.assert_close(D(x[1:]), D(x)[1:])


def test_outputs_are_logits_not_probabilities():
    D = ModalityDiscriminator(8)
    with torch.no_grad():
        D.net[2].bias.fill_(10.0)
    assert (D(torch.zeros(1, 3, 8)) > 1).all()


@pytest.mark.parametrize("shape", [(2, 5, 17), (2, 16), (2, 3, 4, 16)])
def test_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"\[B,T,16\]"):
        ModalityDiscriminator(16)(torch.randn(*shape))


def test_gradient_reaches_every_parameter_and_learns():
    torch.manual_seed(0)
    d = 16
    D = ModalityDiscriminator(d, hidden=32)
    opt = torch.optim.Adam(D.parameters(), lr=1e-2)
    speech = torch.randn(4, 6, d) + 1.0
    text = torch.randn(4, 6, d) - 1.0
    inv = torch.randn(4, 6, d)
    pad_mask = torch.zeros(4, 6, dtype=torch.bool)
    pad_mask[1, 4:] = True
    first = None
    for step in range(60):
        L_D, L_G = gan_losses(D(speech), D(text), D(inv), pad_mask)
        loss = -L_D  # discriminator separates speech from text
        opt.zero_grad()
        loss.backward()
        if step == 0:
            first = loss.item()
            for name, p in D.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        opt.step()
    assert loss.item() < 0.1 * first
