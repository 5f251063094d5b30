"""hparams/m4ser.yaml is the paper's Table I configuration, readable without building models."""

from pathlib import Path

from hyperpyyaml import resolve_references

from m4ser_lobes.fileio import load_yaml_values

YAML = Path(__file__).resolve().parents[2] / "hparams" / "m4ser.yaml"


def values(overrides=None):
    with open(YAML, encoding="utf-8") as fin:
        return load_yaml_values(resolve_references(fin, overrides or {"data_folder": "/d"}))


def test_table_one():
    hp = values()
    assert hp["speech_encoder_source"] == "facebook/hubert-base-ls960"
    assert hp["text_encoder_source"] == "bert-base-uncased"
    assert (hp["d_model"], hp["nhead"], hp["num_emotions"]) == (768, 12, 4)
    assert (hp["alpha"], hp["beta"], hp["gamma"], hp["lam"], hp["tau"]) == (0.1, 3.0, 0.01, 0.1, 0.07)
    assert (hp["lr"], hp["batch_size"], hp["number_of_epochs"], hp["er_dropout"]) == (1e-5, 16, 100, 0.5)
    assert hp["lr_encoders"] == hp["lr_head"] == hp["lr_discriminator"] == 1e-5
    assert hp["discriminator_hidden"] == 256 and hp["aec_max_len"] == 16
    assert all(hp[k] for k in ("use_msr", "use_mir", "use_aed", "use_aec", "use_gan", "use_lcl"))
    assert hp["modalities"] == "both" and hp["text_source"] == "hypothesis"


def test_every_ablation_has_its_own_output_folder():
    a = values({"data_folder": "/d", "experiment_name": "wo_gan", "use_gan": False, "fold": 3})
    assert a["output_folder"] == "results/wo_gan/fold3/seed1986"
    assert a["test_annotation"] == "results/prepared/fold3/test.json"
    assert a["use_gan"] is False
