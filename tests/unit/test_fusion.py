"""CME, MIR generator and MultimodalFusion: shapes, ablation switches, masks."""

import pytest
import torch

from m4ser_lobes.cme import CrossModalEncoder
from m4ser_lobes.fusion import MultimodalFusion
from m4ser_lobes.mir import MIRGenerator

D, H = 16, 4


def padded_pair(seed=0, t_s=(9, 5), t_t=(6, 3)):
    """Two utterances, the second shorter on both sides; padding filled with garbage."""
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(2, max(t_s), D, generator=g)
    text = torch.randn(2, max(t_t), D, generator=g)
    s_pad = torch.arange(max(t_s)).unsqueeze(0) >= torch.tensor(t_s).unsqueeze(1)
    t_pad = torch.arange(max(t_t)).unsqueeze(0) >= torch.tensor(t_t).unsqueeze(1)
    speech[s_pad] = 50.0
    text[t_pad] = -50.0
    return speech, s_pad, text, t_pad, t_s, t_t


ABLATIONS = {
    "full": dict(),
    "wo_msr": dict(use_msr=False),
    "wo_mir": dict(use_mir=False),
    "wo_both": dict(use_msr=False, use_mir=False),
    "speech_only": dict(modalities="speech"),
    "text_only": dict(modalities="text"),
    "text_specific_hst": dict(hst_text_source="text_specific"),
    "two_cme_layers": dict(cme_layers=2),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_shapes_per_ablation(name):
    fusion = MultimodalFusion(D, H, **ABLATIONS[name]).eval()
    speech, s_pad, text, t_pad, _, _ = padded_pair()
    out = fusion(speech, s_pad, text, t_pad)
    assert out.pooled.shape == (2, fusion.output_dim)
    assert torch.isfinite(out.pooled).all()
    if fusion.interacts:
        assert out.speech_specific.shape == out.text_specific.shape == speech.shape
    if fusion.interacts and fusion.use_mir:
        assert out.invariant.shape == speech.shape
    else:
        assert out.invariant is None
    expected_dim = 2 * D if name == "wo_both" else D
    assert fusion.output_dim == expected_dim


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_alone_equals_batched(name):
    """An utterance's pooled vector is the same alone and padded next to a longer one."""
    torch.manual_seed(0)
    fusion = MultimodalFusion(D, H, **ABLATIONS[name]).eval()
    speech, s_pad, text, t_pad, t_s, t_t = padded_pair()
    batched = fusion(speech, s_pad, text, t_pad)
    alone = fusion(
        speech[1:, : t_s[1]], s_pad[1:, : t_s[1]], text[1:, : t_t[1]], t_pad[1:, : t_t[1]]
    )
    torch.testing.assert_close(batched.pooled[1:], alone.pooled, atol=1e-5, rtol=1e-5)
    if alone.invariant is not None:
        torch.testing.assert_close(
            batched.invariant[1:, : t_s[1]], alone.invariant, atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("name", ["full", "wo_msr", "wo_mir", "wo_both", "speech_only"])
def test_the_mask_matters(name):
    """Dropping the masks lets the garbage in the padding change the shorter utterance."""
    fusion = MultimodalFusion(D, H, **ABLATIONS[name]).eval()
    speech, s_pad, text, t_pad, _, _ = padded_pair()
    masked = fusion(speech, s_pad, text, t_pad).pooled
    unmasked = fusion(speech, torch.zeros_like(s_pad), text, torch.zeros_like(t_pad)).pooled
    assert not torch.allclose(masked[1], unmasked[1], atol=1e-3)


def test_text_pool_mask_excludes_tokens_in_text_only_mode():
    fusion = MultimodalFusion(D, H, modalities="text").eval()
    speech, s_pad, text, t_pad, _, _ = padded_pair()
    pool_mask = t_pad.clone()
    pool_mask[:, 0] = True  # e.g. [CLS]
    out = fusion(speech, s_pad, text, t_pad, text_pool_mask=pool_mask)
    torch.testing.assert_close(out.pooled[0], text[0, 1:6].mean(dim=0))


def test_gradients_reach_every_fusion_parameter():
    fusion = MultimodalFusion(D, H).train()
    speech, s_pad, text, t_pad, _, _ = padded_pair()
    out = fusion(speech, s_pad, text, t_pad)
    (out.pooled.sum() + out.invariant.masked_fill(s_pad.unsqueeze(-1), 0).sum()).backward()
    missing = [n for n, p in fusion.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="modalities"):
        MultimodalFusion(D, H, modalities="video")
    with pytest.raises(ValueError, match="hst_text_source"):
        MIRGenerator(D, H, hst_text_source="concat")
    with pytest.raises(ValueError, match="divisible"):
        CrossModalEncoder(D, nhead=5)
    with pytest.raises(ValueError, match="num_layers"):
        CrossModalEncoder(D, H, num_layers=0)
    fusion = MultimodalFusion(D, H)
    speech, s_pad, text, t_pad, _, _ = padded_pair()
    with pytest.raises(ValueError, match="width"):
        fusion(speech, s_pad, torch.randn(2, 6, D + 1), t_pad)
    with pytest.raises(ValueError, match="kv_pad_mask"):
        CrossModalEncoder(D, H)(speech, text, s_pad)


@pytest.mark.parametrize("modalities", ["both", "speech", "text"])
@pytest.mark.parametrize("use_msr", [True, False])
@pytest.mark.parametrize("use_mir", [True, False])
def test_h_inv_exists_exactly_when_the_switches_say(modalities, use_msr, use_mir):
    """The fusion builds MIR and returns H_inv iff ``switches.produces_invariant``: the GAN rule
    the configuration checks on plain values is the fusion's own derivation."""
    from m4ser_lobes import switches

    fusion = MultimodalFusion(D, H, modalities=modalities, use_msr=use_msr, use_mir=use_mir)
    expected = switches.produces_invariant(modalities, use_mir)
    assert fusion.produces_invariant == expected == hasattr(fusion, "mir")
    speech, s_pad, text, t_pad, _, _ = padded_pair()
    assert (fusion.eval()(speech, s_pad, text, t_pad).invariant is not None) == expected
