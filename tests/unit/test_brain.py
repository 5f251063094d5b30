"""M4SERBrain's two-phase adversarial update (docs/design.md §5) and its named optimisers.

Every Table IV row trains one step in ``test_table4.py``; ``make_brain`` is in ``conftest.py``.
"""

from pathlib import Path

import pytest
import speechbrain as sb
import torch

from m4ser_lobes.brain import M4SERBrain, unwrap


def snapshot(module):
    return {n: p.detach().clone() for n, p in unwrap(module).named_parameters()}


def changed(before, after):
    return {n for n in before if not torch.equal(before[n], after[n])}


def test_two_phase_semantics(make_brain, tmp_path, monkeypatch):
    brain, loader = make_brain(tmp_path)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    model, disc = brain.modules.model, brain.modules.discriminator
    record = {}

    phase = {"name": "forward"}
    d_grad_phases = []
    for p in disc.parameters():
        p.register_hook(lambda g: d_grad_phases.append(phase["name"]) or g)

    original_phase = M4SERBrain._discriminator_phase

    def spy_phase(self, outputs, should_step):
        phase["name"] = "discriminator"
        original_phase(self, outputs, should_step)
        phase["name"] = "model"
        record["model_grads_after_d"] = [p.grad for p in unwrap(model).parameters()]
        record["d_grads_after_d"] = [p.grad for p in disc.parameters()]
        record["model_after_d"], record["d_after_d"] = snapshot(model), snapshot(disc)

    original_terms = M4SERBrain.adversarial_terms

    def spy_terms(self, outputs, trainable):
        if not trainable:
            record["d_used_for_lg"] = snapshot(disc)
        return original_terms(self, outputs, trainable)

    monkeypatch.setattr(M4SERBrain, "_discriminator_phase", spy_phase)
    monkeypatch.setattr(M4SERBrain, "adversarial_terms", spy_terms)
    model0, d0 = snapshot(model), snapshot(disc)
    brain.step = 1
    batch = next(b for b in loader if any(b.aec_targets))  # with CHANGE tokens: AEC learns
    loss = brain.fit_batch(batch)
    assert torch.isfinite(loss)

    # after the discriminator phase only D has changed, and every gradient was cleared
    assert changed(d0, record["d_after_d"]) == set(d0)
    assert changed(model0, record["model_after_d"]) == set()
    assert all(g is None for g in record["model_grads_after_d"] + record["d_grads_after_d"])
    # L_G of the model phase was computed with the *updated* D
    assert changed(record["d_after_d"], record["d_used_for_lg"]) == set()
    # after the model phase D has not changed, the rest of the model has
    model2, d2 = snapshot(model), snapshot(disc)
    assert changed(record["d_after_d"], d2) == set()
    trainable = {n for n, p in unwrap(model).named_parameters() if p.requires_grad}
    # Adam moves every trainable parameter that got a gradient (unused embedding rows aside).
    assert trainable - changed(record["model_after_d"], model2) <= {
        n for n in trainable if "embeddings" in n
    }
    # D received gradients only in its own phase
    assert d_grad_phases and set(d_grad_phases) == {"discriminator"}
    assert brain.optimizer_step == 1
    assert all(p.grad is None for p in unwrap(model).parameters())
    assert brain.term_counts["L_G"] == 1 and brain.term_sums["L_G"] >= 2 * 0.6931 - 1e-4


def test_named_optimizers_are_checkpointed_and_restored(make_brain, tmp_path):
    brain, loader = make_brain(tmp_path)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    for step, batch in zip((1, 2), loader):
        brain.step = step
        brain.fit_batch(batch)
    assert set(brain.optimizers_dict) == {"encoders", "head", "discriminator"}
    ckpt = brain.checkpointer.save_checkpoint()
    for name in brain.optimizers_dict:
        assert (Path(ckpt.path) / f"optimizer_{name}.ckpt").exists()

    restored, _ = make_brain(tmp_path)
    restored.on_fit_start()  # recovers the checkpoint
    for name, optimizer in brain.optimizers_dict.items():
        a, b = optimizer.state_dict(), restored.optimizers_dict[name].state_dict()
        assert a["param_groups"][0]["params"] == b["param_groups"][0]["params"]
        for key in a["state"]:
            torch.testing.assert_close(a["state"][key]["exp_avg"], b["state"][key]["exp_avg"])
    d_shapes = {p.shape for p in unwrap(restored.modules.discriminator).parameters()}
    d_state = restored.optimizers_dict["discriminator"].state_dict()["state"]
    assert {s["exp_avg"].shape for s in d_state.values()} == d_shapes


@pytest.mark.parametrize("switches", [
    {"use_mir": False},
    {"modalities": "speech", "use_aed": False, "use_aec": False},
    {"modalities": "text"},
    {"use_msr": False, "use_mir": False},
])
def test_gan_without_h_inv_is_a_clear_error(make_brain, tmp_path, switches):
    """Every configuration without H_inv is refused when the Brain is built, not in a batch."""
    with pytest.raises(ValueError, match="use_gan=False"):
        make_brain(tmp_path, use_gan=True, **switches)


def test_bf16_and_accumulation_keep_the_phases(make_brain, tmp_path):
    brain, loader = make_brain(tmp_path,
                               grad_accumulation_factor=2, precision="bf16")
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    d0 = snapshot(brain.modules.discriminator)
    batches = iter(loader)
    brain.step = 1  # 1 % 2 != 0: accumulate only
    brain.fit_batch(next(batches))
    assert changed(d0, snapshot(brain.modules.discriminator)) == set()
    assert brain.optimizer_step == 0
    brain.step = 2
    brain.fit_batch(next(batches))
    assert changed(d0, snapshot(brain.modules.discriminator)) == set(d0)
    assert brain.optimizer_step == 1


@pytest.mark.parametrize("use_aed, max_tokens, cap", [
    (True, 128, 2),     # selective spans: aec_max_len
    (False, 128, 128),  # Table IV C(1) "w/o AED": whole references up to max_tokens
    (False, 4, 4),      # ... and cut (and counted) beyond it
])
def test_aec_target_cap_follows_the_correction_mode(
    make_brain, tmp_path, use_aed, max_tokens, cap
):
    brain, loader = make_brain(tmp_path, use_aed=use_aed,
                               use_gan=False, aec_max_len=2, max_tokens=max_tokens)
    brain.on_stage_start(sb.Stage.TRAIN)
    truncated = sequences = 0
    eos = unwrap(brain.modules.model).text_encoder.special_ids()[1]
    for batch in loader:
        targets = [t for utt in batch.aec_targets for _, t in sorted(utt.items())]
        if not use_aed:
            assert all(set(utt) == {0} for utt in batch.aec_targets)  # hosted by [CLS]
        predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
        correction = predictions[1]
        want = [len(t) > cap for t in targets]
        assert correction.num_truncated == sum(want)
        for row, (target, cut) in enumerate(zip(targets, want)):
            labels = correction.decoder_labels[row].tolist()
            assert labels[: min(len(target), cap)] == target[:cap]
            assert (eos in labels) != cut  # a whole target is taught to stop, a cut one is not
        brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
        truncated, sequences = truncated + sum(want), sequences + len(targets)
    if not use_aed:
        assert sequences == len(loader.dataset)  # one whole-utterance sequence per utterance
        assert (truncated > 0) == (cap == 4)
    else:
        assert truncated > 0  # the mini corpus has spans longer than 2 tokens
    # logged per decoder sequence: the share of cut targets over the stage
    assert brain.term_counts["aec_truncated"] == sequences
    share = float(brain.term_sums["aec_truncated"]) / sequences
    assert share == pytest.approx(truncated / sequences)
    assert brain.aec_target_cap == cap


def test_whole_utterance_correction_needs_max_tokens(make_brain, tmp_path):
    with pytest.raises(ValueError, match="max_tokens"):
        make_brain(tmp_path, use_aed=False, use_gan=False,
                   max_tokens=None)


def test_discriminator_phase_checks_its_loss_is_finite(
    make_brain, tmp_path
):
    brain, loader = make_brain(tmp_path, use_aec=False)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.nonfinite_count = 0
    batch = next(iter(loader))
    with torch.no_grad():
        for p in unwrap(brain.modules.discriminator).parameters():
            p.fill_(float("nan"))
    outputs, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.nonfinite_patience = 1
    brain._discriminator_phase(outputs, should_step=False)
    assert brain.nonfinite_count == 1  # counted, patience not yet exhausted
    with pytest.raises(ValueError, match="not finite"):
        brain._discriminator_phase(outputs, should_step=False)
    assert brain.nonfinite_count == 2


def test_lcl_anchors_without_positive_are_logged(make_brain, tmp_path):
    from m4ser_lobes.losses import anchors_without_positive

    brain, loader = make_brain(tmp_path, use_gan=False)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.step = 1
    batch = next(iter(loader))
    brain.fit_batch(batch)
    labels = batch.emo_encoded.data.squeeze(1)
    assert brain.term_counts["LCL_no_positive"] == len(labels)
    assert float(brain.term_sums["LCL_no_positive"]) == anchors_without_positive(labels).item()

    unlogged, loader = make_brain(tmp_path / "b",
                                  use_gan=False, use_lcl=False)
    unlogged.on_fit_start()
    unlogged.on_stage_start(sb.Stage.TRAIN)
    unlogged.step = 1
    unlogged.fit_batch(next(iter(loader)))
    assert "LCL_no_positive" not in unlogged.term_sums


def test_class_weights_enter_the_emotion_loss(make_brain, tmp_path):
    brain, loader = make_brain(tmp_path, use_gan=False)
    brain.modules.eval()
    batch = next(iter(loader))
    labels = batch.emo_encoded.data.squeeze(1)
    weights = torch.ones(len(brain.hparams.label_encoder))
    weights[labels[0]] = 5.0  # one class present in the batch weighs more
    losses = []
    with torch.no_grad():
        predictions = brain.compute_forward(batch, sb.Stage.VALID)
        for w in (None, torch.ones_like(weights), weights):
            brain.on_stage_start(sb.Stage.VALID)
            brain.emotion_class_weights = w
            losses.append(brain.compute_objectives(predictions, batch, sb.Stage.VALID).item())
    plain, ones, weighted = losses
    assert ones == pytest.approx(plain, abs=1e-6)  # all-ones weights are the plain loss
    if len(set(labels.tolist())) > 1:
        assert weighted != pytest.approx(plain, abs=1e-6)


def test_selection_metric_keeps_its_best_checkpoint(make_brain, tmp_path):
    brain, _ = make_brain(tmp_path, use_gan=False,
                          selection_metric="W-F1")
    assert brain.selection_metric == "W-F1"
    brain.on_fit_start()
    true = [0, 0, 0, 1]
    # epoch 1: best W-F1 (64.3, UA 50); epoch 2: best UA (66.7, W-F1 50); epoch 3: latest
    for epoch, pred in enumerate(([0, 0, 0, 0], [0, 1, 1, 1], [1, 0, 0, 0]), start=1):
        brain.on_stage_start(sb.Stage.VALID)
        brain.predictions.update(true=true, pred=pred)
        brain.on_stage_end(sb.Stage.VALID, 0.0, epoch)
    kept = {(c.meta["W-F1"], c.meta["UA"]) for c in brain.checkpointer.list_checkpoints()}
    assert kept == {(64.2857, 50.0), (50.0, 33.3333)}  # the best-UA epoch 2 was not kept
    assert brain.checkpointer.find_checkpoint(max_key="W-F1").meta["W-F1"] == 64.2857
