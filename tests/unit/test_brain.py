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


def test_gan_off_builds_no_discriminator(make_brain, tmp_path):
    """use_gan=False builds no D: no module, no recoverable, no file in the checkpoint."""
    brain, loader = make_brain(tmp_path, use_gan=False)
    assert brain.hparams.discriminator is None and not brain.use_gan
    assert "discriminator" not in brain.modules
    assert "discriminator" not in brain.checkpointer.recoverables
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.step = 1
    brain.fit_batch(next(iter(loader)))
    assert set(brain.optimizers_dict) == {"encoders", "head"}
    files = {p.name for p in Path(brain.checkpointer.save_checkpoint().path).iterdir()}
    assert "model.ckpt" in files and not any(f.startswith(("discriminator", "optimizer_disc"))
                                             for f in files)


def test_what_runs_is_what_was_built(make_brain, tmp_path):
    """The Brain reads use_gan/use_aed/use_aec from the objects, not from the flags."""
    built, loader = make_brain(tmp_path, use_gan=False, use_aed=False)
    flags = {**vars(built.hparams), "use_gan": True, "use_aed": True}  # contradict the objects
    brain = M4SERBrain(modules={"model": unwrap(built.modules.model)}, hparams=flags,
                       run_opts={"device": "cpu"}, checkpointer=None)
    assert (brain.use_gan, brain.use_aed, brain.use_aec) == (False, False, True)
    assert [t.paper for t in brain.loss_terms] == ["L_ER", "L_AEC", "L_LCL"]
    assert set(brain.loss_weights) == {"alpha", "lam"}  # beta and gamma weigh nothing here
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.step = 1
    brain.fit_batch(next(b for b in loader if any(b.aec_targets)))
    assert {k for k in brain.term_sums if k.startswith("L_")} == {"L_ER", "L_AEC", "L_LCL"}


def test_speech_only_model_with_aed_is_refused_at_construction(make_brain, tmp_path):
    """The rule the configuration checks (switches.check_switches) also holds for objects."""
    from m4ser_lobes.fusion import MultimodalFusion
    from m4ser_lobes.heads import EmotionHead
    from m4ser_lobes.model import M4SER

    brain, _ = make_brain(tmp_path, use_gan=False)
    full = unwrap(brain.modules.model)
    d = brain.hparams.d_model
    speech_only = M4SER(MultimodalFusion(d, brain.hparams.nhead, modalities="speech"),
                        EmotionHead(d, 4), full.speech_encoder, full.text_encoder,
                        aed_head=full.aed_head)
    with pytest.raises(ValueError, match=r"modalities=speech with use_aed=True: .*"
                                         r"add --use_aed=False$"):
        M4SERBrain(modules={"model": speech_only}, hparams=vars(brain.hparams),
                   run_opts={"device": "cpu"}, checkpointer=None)


def test_a_loss_term_is_a_table_row_and_a_method(make_brain, tmp_path, monkeypatch):
    """Adding a term: one row of losses.LOSS_TERMS plus M4SERBrain.loss_<name>; nothing else."""
    from m4ser_lobes import losses

    row = losses.LossTerm("xyz", "L_XYZ", weight=("lam",), switch=None)
    monkeypatch.setattr(losses, "LOSS_TERMS", losses.LOSS_TERMS + (row,))
    with pytest.raises(TypeError, match="L_XYZ .*M4SERBrain.loss_xyz"):
        make_brain(tmp_path / "a", use_gan=False)
    values = []

    def loss_xyz(self, outputs, batch, correction, emotions):
        values.append(outputs.pooled.float().pow(2).mean())
        return values[-1]

    monkeypatch.setattr(M4SERBrain, "loss_xyz", loss_xyz, raising=False)
    brain, loader = make_brain(tmp_path / "b", use_gan=False)
    brain.on_stage_start(sb.Stage.TRAIN)
    batch = next(iter(loader))
    predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
    with_xyz = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    assert float(brain.term_sums["L_XYZ"]) == values[0].item()  # logged under its paper name
    brain.loss_terms = [t for t in brain.loss_terms if t.name != "xyz"]
    without = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    lam = brain.hparams.lam
    assert with_xyz.item() == pytest.approx(without.item() + lam * values[0].item(), rel=1e-6)


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


def test_transcripts_with_aed_or_aec_are_refused_at_construction(make_brain, tmp_path):
    """Table VI's setting: the Brain reads text_source from the hparams and refuses AED/AEC."""
    from m4ser_lobes.experiment.settings import ConfigError

    with pytest.raises(ConfigError, match=r"text_source=transcript with use_aed=True and "
                                          r"use_aec=True: .*add --use_aed=False --use_aec=False$"):
        make_brain(tmp_path, text_source="transcript")  # the configuration check
    brain, _ = make_brain(tmp_path, use_gan=False, use_aed=False)  # AEC alone, on hypotheses
    with pytest.raises(ValueError, match=r"text_source=transcript with use_aec=True: .*nothing to "
                                         r"correct.*add --use_aec=False$"):
        M4SERBrain(modules=brain.modules, hparams={**vars(brain.hparams),
                                                    "text_source": "transcript"},
                   run_opts={"device": "cpu"}, checkpointer=None)


def test_train_log_opens_with_what_its_numbers_are(make_brain, tmp_path):
    """L_D is logged with the paper's sign (<= 0) and the log's header says so, once."""
    brain, _ = make_brain(tmp_path)
    log = Path(brain.hparams.train_logger.save_file)
    log.parent.mkdir(parents=True, exist_ok=True)
    brain.on_fit_start()
    brain.hparams.train_logger.log_stats({"epoch": 1}, train_stats={"L_D": -1.2})
    brain.on_fit_start()  # a resumed run: the header is not repeated
    lines = log.read_text().splitlines()
    assert [line.startswith("#") for line in lines] == [True, True, True, False]
    assert "L_D = E[log D(H_S^spe)] + E[log(1 - D(H_T^spe))] <= 0" in lines[2]
    assert "MAXIMISES" in lines[2] and "best valid UA" in lines[1]
    no_gan, _ = make_brain(tmp_path / "no_gan", use_gan=False)
    assert not any("L_D" in line for line in no_gan.log_header())


@pytest.mark.parametrize("validation, bucketing, optimistic", [
    ("train_sessions", False, False), ("test_fold", True, True)])
def test_test_metrics_say_how_the_checkpoint_was_chosen(make_brain, tmp_path, validation,
                                                          bucketing, optimistic):
    import json

    from m4ser_lobes.experiment.settings import protocol, protocol_text

    brain, _ = make_brain(tmp_path, use_gan=False, validation=validation, bucketing=bucketing)
    ran = protocol(vars(brain.hparams))  # what m4ser_lobes.experiment.run hands the Brain
    brain.hparams.run_protocol = {**ran, "protocol_summary": protocol_text(ran)}
    Path(brain.hparams.output_folder).mkdir(parents=True, exist_ok=True)
    brain.on_stage_start(sb.Stage.TEST)
    brain.predictions.update(ids=["a", "b"], true=[0, 1], pred=[0, 0],
                             prob=[[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1]])
    brain.on_stage_end(sb.Stage.TEST, 0.0)
    metrics = json.loads((Path(brain.hparams.output_folder) / "test_metrics.json").read_text())
    assert {k: metrics[k] for k in ("selection_metric", "validation", "valid_ratio", "seed",
                                    "optimistic")} == {
        "selection_metric": "UA", "validation": validation, "optimistic": optimistic,
        "valid_ratio": None if optimistic else 0.1, "seed": brain.hparams.seed}
    assert metrics["batching"] == {"bucketing": bucketing, "batch_size": 4,
                                   "max_batch_seconds": None,
                                   "num_buckets": 20 if bucketing else None}
    assert metrics["protocol_summary"].startswith("OPTIMISTIC: " if optimistic else "checkpoint")
