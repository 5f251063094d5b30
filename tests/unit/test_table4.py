"""Every row of Table IV trains one step of ``M4SERBrain`` built from ``hparams/m4ser.yaml``.

The rows are read from README.md's "Table IV ablations" table (the commands users copy), and
that table must equal ``m4ser_lobes.experiment.ablations.TABLE_IV``, the ablations as the paper defines
them: the README, the YAML's switches and this test cannot drift apart. Per row, one ``fit_batch`` on 2 utterances
with the tiny sizes must log exactly the row's loss terms (``M4SERBrain.compute_objectives``'s
names) and change exactly the row's parts of the model, and the row's values must pass
``m4ser_lobes.experiment.run.plan_run``'s checks.
"""

import re
from pathlib import Path

import pytest
import speechbrain as sb
import torch

from m4ser_lobes.brain import unwrap
from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.experiment.ablations import TABLE_IV
from m4ser_lobes.experiment.run import plan_run

REPO = Path(__file__).resolve().parents[2]
HPARAMS = REPO / "hparams" / "m4ser.yaml"
def readme_rows(text):
    """Table IV label -> (experiment_name, overrides) of README.md's "Table IV ablations" table.

    Example
    -------
    >>> readme_rows("## Table IV ablations: x\\n\\n| Table IV row | command |\\n|---|---|\\n"
    ...             "| D(1) w/o GAN | `... --experiment_name=wo_gan --use_gan=False` |\\n")
    {'D(1) w/o GAN': ('wo_gan', {'use_gan': False})}
    """
    section = text.split("## Table IV ablations", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for label, command in re.findall(r"^\| ([^|]+?) \| `([^`]+)`", section, flags=re.M):
        values = dict(re.findall(r"--(\w+)=(\S+)", command))
        overrides = {k: {"True": True, "False": False}.get(v, v) for k, v in values.items()}
        rows[label] = (overrides.pop("experiment_name"), overrides)
    return rows


def test_the_readme_table_is_table_iv():
    assert readme_rows((REPO / "README.md").read_text(encoding="utf-8")) == TABLE_IV


def switches(overrides):
    """The row's switch values: the YAML's defaults with the row's overrides."""
    values = plan_run(HPARAMS, {"data_folder": "unused", "skip_prep": True,
                                **overrides}, IEMOCAP).values
    keys = ("modalities", "use_msr", "use_mir", "use_aed", "use_aec", "use_gan", "use_lcl")
    return {key: values[key] for key in keys}


def expected_terms(s):
    """The loss terms ``M4SERBrain`` logs in training (paper names of ``losses.LOSS_TERMS``)."""
    terms = {"L_ER"}
    terms |= {"L_AED"} if s["use_aed"] else set()
    terms |= {"L_AEC"} if s["use_aec"] else set()
    terms |= {"L_G", "L_D", "L_GAN"} if s["use_gan"] else set()
    terms |= {"L_LCL"} if s["use_lcl"] else set()
    return terms


def expected_parts(s):
    """The parts of the model one training step must change."""
    speech = s["modalities"] in ("both", "speech")
    text = s["modalities"] in ("both", "text")
    interacts = s["modalities"] == "both" and (s["use_msr"] or s["use_mir"])
    return {
        "emotion_head": True,
        "speech_encoder": speech,
        "text_encoder": text,
        "cme": interacts,  # MSR's cross-modal encoders; MIR reads their outputs too
        "mir": interacts and s["use_mir"],
        "aed_head": s["use_aed"],
        "aec_decoder": s["use_aec"],
        "discriminator": s["use_gan"],
    }


def parts_of(brain):
    """Part name -> its trainable parameters (an absent part has none)."""
    model = unwrap(brain.modules.model)
    fusion = model.fusion
    modules = {
        "emotion_head": [model.emotion_head],
        "speech_encoder": [model.speech_encoder],
        "text_encoder": [model.text_encoder],
        "cme": [getattr(fusion, n, None) for n in
                ("cme_text_to_speech", "cme_speech_specific", "cme_text_specific")],
        "mir": [getattr(fusion, "mir", None)],
        "aed_head": [model.aed_head],
        "aec_decoder": [model.aec_decoder],
        "discriminator": [brain.modules["discriminator"]] if "discriminator" in brain.modules
        else [],
    }
    return {
        name: {f"{name}.{i}.{n}": p for i, m in enumerate(ms) if m is not None
               for n, p in unwrap(m).named_parameters() if p.requires_grad}
        for name, ms in modules.items()
    }


@pytest.mark.parametrize("label", list(TABLE_IV))
def test_each_row_trains_one_step_with_its_terms_and_parts(label, make_brain, mini_iemocap,
                                                            tmp_path):
    experiment, overrides = TABLE_IV[label]
    s = switches(overrides)
    plan_run(HPARAMS, {"data_folder": str(mini_iemocap.root),
                       "hypotheses_file": str(mini_iemocap.hypotheses),
                       "experiment_name": experiment, **overrides}, IEMOCAP)
    torch.manual_seed(0)
    brain, loader = make_brain(tmp_path, batch_size=2, experiment_name=experiment, **overrides)
    brain.on_fit_start()
    brain.on_stage_start(sb.Stage.TRAIN)
    brain.step = 1
    # a batch with corrections (CHANGE tokens) when AEC trains, so that its decoder learns
    batch = next(b for b in loader if not s["use_aec"] or any(b.aec_targets))
    parts = parts_of(brain)
    before = {n: p.detach().clone() for params in parts.values() for n, p in params.items()}
    assert torch.isfinite(brain.fit_batch(batch))

    logged = {name for name in brain.term_sums if name.startswith("L_")}
    assert logged == expected_terms(s)
    changed = {
        name: any(not torch.equal(before[n], p.detach()) for n, p in params.items())
        for name, params in parts.items()
    }
    assert changed == expected_parts(s)
    assert ("discriminator" in brain.optimizers_dict) == s["use_gan"]
