"""Tests of m4ser_lobes.heads (EmotionHead, Eq. 18; AEDHead, Eq. 2) and of the pooling that feeds
the ER head, m4ser_lobes.masks.mean_over_time (Eq. 17)."""

import pytest
import torch

from m4ser_lobes.heads import AEDHead, EmotionHead
from m4ser_lobes.masks import mean_over_time


def _mask(lengths, T):
    return torch.arange(T).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)  # True = pad


@pytest.mark.parametrize("lengths,T", [([3], 3), ([1, 4, 2], 4), ([5, 0, 2], 5)])
def test_mean_over_time_equals_mean_of_valid_rows(lengths, T):
    x = torch.randn(len(lengths), T, 6)
    out = mean_over_time(x, _mask(lengths, T))
    assert out.shape == (len(lengths), 6)
    for b, n in enumerate(lengths):
        expected = x[b, :n].mean(0) if n else torch.zeros(6)
        torch.testing.assert_close(out[b], expected)


def test_mean_over_time_all_padding_row_is_zero_and_grad_finite():
    x = torch.randn(2, 3, 4, requires_grad=True)
    pad_mask = torch.tensor([[False, True, True], [True, True, True]])
    out = mean_over_time(x, pad_mask)
    assert (out[1] == 0).all() and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[pad_mask] == 0).all()
    assert (x.grad[0, 0] == 1).all()


def test_mean_over_time_padding_content_irrelevant_and_mask_matters():
    x = torch.randn(2, 4, 3)
    pad_mask = _mask([2, 4], 4)
    dirty = x.masked_fill(pad_mask.unsqueeze(-1), float("nan"))
    torch.testing.assert_close(mean_over_time(dirty, pad_mask), mean_over_time(x, pad_mask))
    assert not torch.allclose(mean_over_time(x, pad_mask), mean_over_time(x, None))
    torch.testing.assert_close(mean_over_time(x, None), x.mean(1))


def test_mean_over_time_padded_batch_equals_alone():
    short, long = torch.randn(1, 2, 5), torch.randn(1, 6, 5)
    batch = torch.cat([torch.cat([short, torch.randn(1, 4, 5)], 1), long])
    out = mean_over_time(batch, _mask([2, 6], 6))
    torch.testing.assert_close(out[0:1], mean_over_time(short))
    torch.testing.assert_close(out[1:2], mean_over_time(long))


@pytest.mark.parametrize(
    "x,mask",
    [
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool)),
        (torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.bool)),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3)),
    ],
)
def test_mean_over_time_rejects_bad_arguments(x, mask):
    with pytest.raises(ValueError):
        mean_over_time(x, mask)


@pytest.mark.parametrize("B,d,C", [(1, 16, 4), (5, 32, 7)])
def test_emotion_head_shapes_and_params(B, d, C):
    head = EmotionHead(d, C)
    assert head(torch.randn(B, d)).shape == (B, C)
    assert sum(p.numel() for p in head.parameters()) == d * C + C


def test_emotion_head_dropout_only_in_training():
    torch.manual_seed(0)
    head = EmotionHead(32, 4, dropout=0.5)
    x = torch.randn(8, 32)
    head.train()
    assert not torch.allclose(head(x), head(x))
    head.eval()
    torch.testing.assert_close(head(x), head(x))
    torch.testing.assert_close(head(x), head.linear(x))


def test_emotion_head_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\[B,16\]"):
        EmotionHead(16, 4)(torch.randn(2, 3, 16))


@pytest.mark.parametrize("B,T,d", [(1, 1, 16), (3, 9, 32)])
def test_aed_head_shapes_and_tokenwise(B, T, d):
    head = AEDHead(d)
    x = torch.randn(B, T, d)
    out = head(x)
    assert out.shape == (B, T, 3)
    torch.testing.assert_close(out[:, -1], head(x[:, -1:]).squeeze(1))
    assert sum(p.numel() for p in head.parameters()) == 3 * d + 3


def test_aed_head_gradients_reach_parameters():
    head = AEDHead(16, dropout=0.1)
    head(torch.randn(2, 4, 16)).sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_aed_head_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\[B,T_t,16\]"):
        AEDHead(16)(torch.randn(2, 16))
