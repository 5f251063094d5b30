"""Tests of m4ser_lobes.losses: LCL (Eq. 21), GAN losses (Eq. 20), CE losses, joint loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from m4ser_lobes.losses import (
    LOSS_TERMS,
    TERMS_BY_NAME,
    active_terms,
    aec_loss,
    aed_loss,
    emotion_loss,
    gan_losses,
    generator_loss,
    joint_loss,
    label_contrastive_loss,
    loss_switches,
    objective_weights,
    term_weight,
)
from m4ser_lobes.masks import mean_over_valid_positions

LN2 = math.log(2.0)


# ----------------------------------------------------------------------------- LCL (Eq. 21)
def reference_supcon(features, labels, temperature):
    """Per-anchor Python loop of docs/design.md §6, in float64."""
    z = F.normalize(features.double(), dim=-1)
    B = z.shape[0]
    losses = []
    for i in range(B):
        positives = [p for p in range(B) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in range(B) if a != i)
        terms = [math.log(math.exp(float(z[i] @ z[p]) / temperature) / denom) for p in positives]
        losses.append(-sum(terms) / len(positives))
    return sum(losses) / len(losses) if losses else 0.0


@pytest.mark.parametrize("B,num_classes", [(2, 1), (5, 2), (8, 3), (16, 7), (9, 9)])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_lcl_matches_reference_loop(B, num_classes, temperature):
    gen = torch.Generator().manual_seed(B * 100 + num_classes)
    features = torch.randn(B, 16, generator=gen)
    labels = torch.randint(0, num_classes, (B,), generator=gen)
    expected = reference_supcon(features, labels, temperature)
    got = label_contrastive_loss(features, labels, temperature)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_lcl_skips_anchors_without_positive():
    # anchors 0,1 share a class; 2 and 3 are alone: only anchors 0 and 1 count
    features = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 0, 1, 2])
    expected = reference_supcon(features, labels, 0.07)
    assert label_contrastive_loss(features, labels).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("B", [1, 2, 6])
def test_lcl_exactly_zero_without_positive_pair_keeps_graph(B):
    features = torch.randn(B, 8, requires_grad=True)
    loss = label_contrastive_loss(features, torch.arange(B))
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert torch.isfinite(features.grad).all()
    assert (features.grad == 0).all()


def test_lcl_scale_invariant():
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(10, 12, generator=gen)
    labels = torch.randint(0, 3, (10,), generator=gen)
    base = label_contrastive_loss(features, labels)
    scales = torch.rand(10, 1, generator=gen) * 100 + 0.01  # per-row scales too
    assert label_contrastive_loss(features * scales, labels).item() == pytest.approx(
        base.item(), rel=1e-5
    )


def test_lcl_gradient_finite_and_stable_for_near_duplicates():
    # identical features in one class and a tiny temperature push exp() to its limits
    features = torch.cat([torch.ones(4, 8), -torch.ones(4, 8)]) * 1e3
    features = features + 1e-3 * torch.randn(8, 8)
    features.requires_grad_(True)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    loss = label_contrastive_loss(features, labels, temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(features.grad).all()


def test_lcl_lower_for_clustered_features():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.eye(3) * 5
    clustered = centres[labels] + 0.01 * torch.randn(6, 3)
    shuffled = centres[torch.tensor([0, 1, 2, 0, 1, 2])]
    assert label_contrastive_loss(clustered, labels) < label_contrastive_loss(shuffled, labels)


@pytest.mark.parametrize(
    "features,labels",
    [(torch.randn(4), torch.zeros(4)), (torch.randn(4, 3), torch.zeros(5)),
     (torch.randn(4, 3), torch.zeros(4, 1))],
)
def test_lcl_rejects_bad_shapes(features, labels):
    with pytest.raises(ValueError, match="features"):
        label_contrastive_loss(features, labels.long())


# ----------------------------------------------------------------------------- GAN (Eq. 20)
def _mask(lengths, T):
    return torch.arange(T).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)  # True = pad


@pytest.mark.parametrize("B,T", [(1, 1), (2, 5), (4, 9)])
def test_gan_losses_at_zero_logits(B, T):
    zeros = torch.zeros(B, T)
    pad_mask = _mask([max(1, T - b) for b in range(B)], T)
    L_D, L_G = gan_losses(zeros, zeros, zeros, pad_mask)
    assert L_G.item() == pytest.approx(2 * LN2, abs=1e-6)
    assert L_D.item() == pytest.approx(-2 * LN2, abs=1e-6)


def test_generator_loss_minimum_is_two_ln_two():
    pad_mask = torch.zeros(1, 200, dtype=torch.bool)
    logits = torch.linspace(-6, 6, 200).unsqueeze(0)
    per_frame = -F.logsigmoid(logits) - F.logsigmoid(-logits)
    assert (per_frame >= 2 * LN2 - 1e-6).all()
    assert generator_loss(logits, pad_mask).item() > 2 * LN2


def test_perfect_discriminator_has_zero_l_d():
    pad_mask = _mask([5, 3], 5)
    L_D, L_G = gan_losses(
        torch.full((2, 5), 50.0), torch.full((2, 5), -50.0), torch.zeros(2, 5), pad_mask
    )
    assert L_D.item() == pytest.approx(0.0, abs=1e-12)
    assert L_D.item() <= 0.0
    # a fooled discriminator (swapped logits) is strongly negative
    L_D_bad, _ = gan_losses(
        torch.full((2, 5), -50.0), torch.full((2, 5), 50.0), torch.zeros(2, 5), pad_mask
    )
    assert L_D_bad.item() == pytest.approx(-100.0, rel=1e-6)


def test_gan_losses_equal_manual_masked_means():
    gen = torch.Generator().manual_seed(1)
    zs, zt, zi = (torch.randn(3, 6, generator=gen) for _ in range(3))
    pad_mask = _mask([6, 2, 4], 6)
    valid = ~pad_mask
    L_D, L_G = gan_losses(zs, zt, zi, pad_mask)
    exp_D = F.logsigmoid(zs[valid]).mean() + F.logsigmoid(-zt[valid]).mean()
    exp_G = (-F.logsigmoid(zi[valid]) - F.logsigmoid(-zi[valid])).mean()
    torch.testing.assert_close(L_D, exp_D)
    torch.testing.assert_close(L_G, exp_G)


def test_gan_padding_garbage_changes_nothing():
    gen = torch.Generator().manual_seed(2)
    zs, zt, zi = (torch.randn(3, 6, generator=gen) for _ in range(3))
    pad_mask = _mask([6, 2, 4], 6)
    clean = gan_losses(zs, zt, zi, pad_mask)
    dirty = [z.masked_fill(pad_mask, 1e4) for z in (zs, zt, zi)]
    dirty[1] = dirty[1].masked_fill(pad_mask, -1e4)
    for garbage, ref in zip(gan_losses(*dirty, pad_mask), clean):
        assert garbage.item() == ref.item()
    nan_filled = [z.masked_fill(pad_mask, float("nan")).requires_grad_(True) for z in (zs, zt, zi)]
    L_D, L_G = gan_losses(*nan_filled, pad_mask)
    assert L_D.item() == clean[0].item() and L_G.item() == clean[1].item()
    (L_D + L_G).backward()
    for z in nan_filled:
        assert torch.isfinite(z.grad).all()
        assert (z.grad[pad_mask] == 0).all()


def test_gan_all_padding_row_excluded():
    gen = torch.Generator().manual_seed(4)
    zs, zt, zi = (torch.randn(2, 5, generator=gen) for _ in range(3))
    pad_mask = _mask([5, 3], 5)
    ref = gan_losses(zs, zt, zi, pad_mask)
    extra = [torch.cat([z, torch.full((1, 5), 7.0)]) for z in (zs, zt, zi)]
    extra_mask = torch.cat([pad_mask, torch.ones(1, 5, dtype=torch.bool)])
    got = gan_losses(*extra, extra_mask)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)


def test_gan_all_padding_batch_is_zero_not_nan():
    pad_mask = torch.ones(2, 3, dtype=torch.bool)
    z = torch.randn(2, 3, requires_grad=True)
    L_D, L_G = gan_losses(z, z, z, pad_mask)
    assert L_D.item() == 0.0 and L_G.item() == 0.0
    (L_D + L_G).backward()
    assert (z.grad == 0).all()


def test_gan_accepts_trailing_unit_dim_and_is_float32():
    pad_mask = _mask([4, 2], 4)
    z = torch.randn(2, 4)
    flat = gan_losses(z, -z, z * 0.5, pad_mask)
    unit = gan_losses(z.unsqueeze(-1), (-z).unsqueeze(-1).half(), (z * 0.5).unsqueeze(-1), pad_mask)
    assert unit.d_loss.dtype == torch.float32 and unit.g_loss.dtype == torch.float32
    torch.testing.assert_close(unit.g_loss, flat.g_loss)
    torch.testing.assert_close(unit.d_loss, flat.d_loss, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(
    "shapes",
    [((2, 5), (2, 4), (2, 5)), ((2, 5), (2, 5), (3, 5)), ((2, 5, 2), (2, 5), (2, 5))],
)
def test_gan_shape_mismatch_raises(shapes):
    pad_mask = torch.zeros(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"\[B,T_s\]"):
        gan_losses(*(torch.zeros(s) for s in shapes), pad_mask)


def test_gan_rejects_non_bool_mask():
    with pytest.raises(ValueError, match="True = padding"):
        gan_losses(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))


def test_gradients_flow_to_the_right_inputs():
    pad_mask = _mask([3, 2], 3)
    zs, zt, zi = (torch.randn(2, 3, requires_grad=True) for _ in range(3))
    L_D, L_G = gan_losses(zs, zt, zi, pad_mask)
    L_G.backward()
    assert zs.grad is None and zt.grad is None
    assert zi.grad.abs().sum() > 0


def test_mean_over_valid_positions():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    pad_mask = torch.tensor([[False, True], [False, False]])
    assert mean_over_valid_positions(values, pad_mask).item() == pytest.approx(8.0 / 3.0)


# ----------------------------------------------------------------------------- CE losses
def test_aed_loss_ignores_minus_100_and_matches_torch():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 7, 3, generator=gen)
    labels = torch.randint(0, 3, (3, 7), generator=gen)
    labels[0, 5:] = -100
    labels[2, 1] = -100
    expected = F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(aed_loss(logits, labels), expected)
    # the value at ignored positions is irrelevant
    garbage = logits.clone()
    garbage[labels == -100] = 1e4
    torch.testing.assert_close(aed_loss(garbage, labels), expected)


def test_aed_loss_class_weights_match_torch():
    gen = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 5, 3, generator=gen)
    labels = torch.tensor([[0, 1, 2, 2, -100], [2, 0, -100, -100, -100]])
    weights = torch.tensor([1.0, 1.0, 1.5])
    expected = F.cross_entropy(
        logits.reshape(-1, 3), labels.reshape(-1), weight=weights, ignore_index=-100
    )
    torch.testing.assert_close(aed_loss(logits, labels, weights), expected)
    assert aed_loss(logits, labels, weights).item() != pytest.approx(aed_loss(logits, labels).item())


def test_aed_loss_all_ignored_is_zero():
    logits = torch.randn(2, 4, 3, requires_grad=True)
    loss = aed_loss(logits, torch.full((2, 4), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert (logits.grad == 0).all()


@pytest.mark.parametrize("K", [0, 1, 4])
def test_aec_loss_token_mean(K):
    V, L = 50, 6
    logits = torch.randn(K, L, V, requires_grad=True)
    labels = torch.randint(0, V, (K, L))
    if K:
        labels[0, 3:] = -100
    loss = aec_loss(logits, labels)
    assert torch.isfinite(loss)
    if K == 0:
        assert loss.item() == 0.0
    else:
        expected = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
        torch.testing.assert_close(loss, expected)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_aec_loss_zero_when_k_is_zero_reaches_upstream_parameters():
    proj = torch.nn.Linear(8, 50)
    logits = proj(torch.zeros(0, 4, 8))
    loss = aec_loss(logits, torch.zeros(0, 4, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    assert proj.weight.grad is not None and (proj.weight.grad == 0).all()


def test_emotion_loss_matches_torch():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 2, 1, 1])
    torch.testing.assert_close(emotion_loss(logits, labels), F.cross_entropy(logits, labels))


@pytest.mark.parametrize(
    "fn,logits,labels",
    [
        (aed_loss, torch.zeros(2, 4, 4), torch.zeros(2, 4)),
        (aed_loss, torch.zeros(2, 4, 3), torch.zeros(2, 5)),
        (aec_loss, torch.zeros(2, 4), torch.zeros(2, 4)),
        (aec_loss, torch.zeros(2, 4, 9), torch.zeros(3, 4)),
        (emotion_loss, torch.zeros(2, 4), torch.zeros(3)),
    ],
)
def test_ce_losses_reject_bad_shapes(fn, logits, labels):
    with pytest.raises(ValueError, match="expects"):
        fn(logits, labels.long())


# ----------------------------------------------------------------------------- joint loss
TABLE_I = {"alpha": 0.1, "beta": 3.0, "gamma": 0.01, "lam": 0.1}
SWITCHES_ON = {"use_aed": True, "use_aec": True, "use_gan": True, "use_lcl": True}


def test_joint_loss_formula():
    terms = {k: torch.tensor(v) for k, v in
             {"er": 1.3, "aed": 0.7, "aec": 2.1, "g": 1.39, "lcl": 3.3}.items()}
    a, b, g, lam = 0.2, 4.0, 0.05, 0.3
    expected = 1.3 + a * (b * 0.7 + 2.1) + g * 1.39 + lam * 3.3
    weights = {"alpha": a, "beta": b, "gamma": g, "lam": lam}
    assert joint_loss(terms, weights).item() == pytest.approx(expected, rel=1e-6)


def test_joint_loss_sums_in_the_order_of_eq_22():
    """Bit for bit: 1·L_ER + αβ·L_AED + α·L_AEC + γ·L_G + λ·L_LCL, added left to right."""
    torch.manual_seed(0)
    values = {k: torch.rand(()) * 10 for k in ("er", "aed", "aec", "g", "lcl")}
    a, b, g, lam = 0.1, 3.0, 0.01, 0.1
    by_hand = (1.0 * values["er"] + a * b * values["aed"] + a * values["aec"]
               + g * values["g"] + lam * values["lcl"])
    assert torch.equal(joint_loss(values, TABLE_I), by_hand)


def test_joint_loss_missing_terms_are_zero():
    er = torch.tensor(0.5, requires_grad=True)
    total = joint_loss({"er": er, "aec": None, "lcl": torch.tensor(1.0)}, {"lam": 0.5})
    assert total.item() == pytest.approx(1.0)
    total.backward()
    assert er.grad.item() == 1.0
    assert joint_loss({}, {}).item() == 0.0


def test_joint_loss_rejects_unknown_and_logged_only_terms():
    with pytest.raises(KeyError, match="xyz"):
        joint_loss({"er": torch.tensor(1.0), "xyz": torch.tensor(1.0)}, TABLE_I)
    for logged_only in ("d", "gan"):  # L_D and L_GAN are logged, never minimised by the model
        with pytest.raises(KeyError, match=logged_only):
            joint_loss({"er": torch.tensor(1.0), logged_only: torch.tensor(1.0)}, TABLE_I)


def test_a_missing_weight_names_its_key():
    with pytest.raises(KeyError, match="beta of L_AED.*--beta="):
        joint_loss({"aed": torch.tensor(1.0)}, {"alpha": 0.1})


# ----------------------------------------------------------------------------- the table
def test_the_table_is_eq_22():
    objective = [(t.name, t.paper, t.weight) for t in LOSS_TERMS if t.in_objective]
    assert objective == [("er", "L_ER", ()), ("aed", "L_AED", ("alpha", "beta")),
                         ("aec", "L_AEC", ("alpha",)), ("g", "L_G", ("gamma",)),
                         ("lcl", "L_LCL", ("lam",))]
    logged = [(t.paper, t.switch, t.computed_by) for t in LOSS_TERMS if not t.in_objective]
    assert logged == [("L_D", "use_gan", "g"), ("L_GAN", "use_gan", "g")]
    assert [t.name for t in LOSS_TERMS if t.every_stage] == ["er"]
    assert TERMS_BY_NAME["g"].reference[1] == pytest.approx(2 * LN2)
    assert [term_weight(TERMS_BY_NAME[n], TABLE_I) for n in ("er", "aec", "g", "lcl")] == \
        [1.0, 0.1, 0.01, 0.1]
    assert term_weight(TERMS_BY_NAME["aed"], TABLE_I) == 0.1 * 3.0


@pytest.mark.parametrize("off, papers, weights", [
    ((), ["L_ER", "L_AED", "L_AEC", "L_G", "L_D", "L_GAN", "L_LCL"], ("alpha", "beta", "gamma", "lam")),
    (("use_gan",), ["L_ER", "L_AED", "L_AEC", "L_LCL"], ("alpha", "beta", "lam")),
    (("use_aed",), ["L_ER", "L_AEC", "L_G", "L_D", "L_GAN", "L_LCL"], ("alpha", "gamma", "lam")),
    (("use_aed", "use_aec", "use_gan", "use_lcl"), ["L_ER"], ()),
])
def test_active_terms_and_the_weights_that_matter(off, papers, weights):
    on = active_terms({**SWITCHES_ON, **{k: False for k in off}})
    assert [t.paper for t in on] == papers
    assert objective_weights(on) == weights


def test_every_switch_needs_a_value():
    assert loss_switches() == ("use_aed", "use_aec", "use_gan", "use_lcl")
    with pytest.raises(KeyError, match="use_lcl.*--use_lcl=False"):
        active_terms({"use_aed": True, "use_aec": True, "use_gan": True})


def test_logged_only_terms_have_no_weight():
    with pytest.raises(KeyError, match="L_D is logged only"):
        term_weight(TERMS_BY_NAME["d"], TABLE_I)
