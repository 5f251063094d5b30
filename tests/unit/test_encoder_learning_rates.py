"""One learning rate per encoder (issue 16): ``lr_speech_encoder`` and ``lr_text_encoder`` are
parameter groups of the ``encoders`` Adam, kept by checkpoints and by a study's fine-tuning start.

``make_brain`` (``conftest.py``) builds the Brain of ``hparams/m4ser.yaml`` with tiny encoders.
"""

import speechbrain as sb
import torch

from m4ser_lobes.brain import unwrap
from m4ser_lobes.experiment import finetune

LRS = {"lr_speech_encoder": 1e-3, "lr_text_encoder": 2e-5, "lr_head": 5e-3}


def group_lrs(optimizer):
    return [(g["name"], g["lr"]) for g in optimizer.param_groups]


def trainable(module):
    return {id(p) for p in module.parameters() if p.requires_grad}


def test_each_encoder_steps_at_its_own_learning_rate(make_brain, tmp_path):
    brain, loader = make_brain(tmp_path, **LRS)
    brain.on_fit_start()
    model = unwrap(brain.modules.model)
    encoders = brain.optimizers_dict["encoders"]
    assert group_lrs(encoders) == [("speech_encoder", 1e-3), ("text_encoder", 2e-5)]
    assert group_lrs(brain.optimizers_dict["head"]) == [("head", 5e-3)]
    speech, text = ({id(p) for p in g["params"]} for g in encoders.param_groups)
    assert speech == trainable(model.speech_encoder.model)
    assert text == trainable(model.text_encoder.model)
    head = {id(p) for p in brain.optimizers_dict["head"].param_groups[0]["params"]}
    assert not head & (speech | text) and head | speech | text == trainable(model)

    before = {id(p): p.detach().clone() for p in model.parameters()}
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.step = 1
    brain.fit_batch(next(iter(loader)))
    # Adam's first step moves every parameter with a gradient by at most lr, the largest by ~lr.
    for encoder, lr in ((model.speech_encoder.model, 1e-3), (model.text_encoder.model, 2e-5)):
        largest = max((p.detach() - before[id(p)]).abs().max().item()
                      for p in encoder.parameters() if p.requires_grad)
        assert 0.9 * lr <= largest <= 1.01 * lr, (lr, largest)  # float32 rounding


def test_a_frozen_encoder_has_no_group(make_brain, tmp_path):
    brain, _ = make_brain(tmp_path, freeze_text_encoder=True, use_aec=False, use_aed=False, **LRS)
    brain.on_fit_start()
    assert group_lrs(brain.optimizers_dict["encoders"]) == [("speech_encoder", 1e-3)]


def test_checkpoints_and_fine_tuning_starts_keep_each_group(make_brain, tmp_path):
    brain, loader = make_brain(tmp_path / "source", **LRS)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.step = 1
    brain.fit_batch(next(iter(loader)))
    brain.checkpointer.save_checkpoint(meta={"UA": 50.0}, end_of_epoch=True)
    saved = brain.optimizers_dict["encoders"].state_dict()

    resumed, _ = make_brain(tmp_path / "source", **LRS)
    resumed.on_fit_start()  # recovers the checkpoint
    restored = resumed.optimizers_dict["encoders"].state_dict()
    assert group_lrs(resumed.optimizers_dict["encoders"]) == \
        group_lrs(brain.optimizers_dict["encoders"])
    for key, state in saved["state"].items():
        torch.testing.assert_close(state["exp_avg"], restored["state"][key]["exp_avg"])

    # A study's fine-tuning start sets each named group's learning rate.
    target, _ = make_brain(tmp_path / "target", **LRS)
    finetune.seed_finetune_checkpoint(
        brain.hparams.save_folder, target.hparams.save_folder, max_key="UA",
        lrs={"speech_encoder": 3e-4, "text_encoder": 1e-5, "head": 7e-4, "discriminator": 2e-4})
    target.on_fit_start()
    assert group_lrs(target.optimizers_dict["encoders"]) == [("speech_encoder", 3e-4),
                                                             ("text_encoder", 1e-5)]
    assert group_lrs(target.optimizers_dict["head"]) == [("head", 7e-4)]
    assert group_lrs(target.optimizers_dict["discriminator"]) == [("discriminator", 2e-4)]
