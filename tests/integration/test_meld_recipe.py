"""The MELD recipe end to end on the generated MELD look-alike, and the shared recipe entry.

One tiny run (``recipes/MELD/train.py hparams/m4ser.yaml`` with ``hparams/meld.yaml``,
1 epoch, tiny random encoders, ``--class_weights=balanced``) is trained once per module on the
generated release (mp4 clips, CSVs, the release's media problems): prep -> train -> select on
dev W-F1 -> test -> export -> classify. The configuration tests build nothing.
"""

import csv
import json
from pathlib import Path

import pytest
from tiny_recipe import REPO, in_process_run

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.corpora.meld import MELD
from m4ser_lobes.experiment.run import plan_run
from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.testing.models import TINY_OVERRIDES

MELD_CLASSES = {"neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"}
TINY = {**TINY_OVERRIDES, "number_of_epochs": 1, "batch_size": 8, "lr": 0.002,
        "max_audio_seconds": 1.5}


def import_meld_demo():
    """``recipes/MELD/demo.py`` as a module (its helpers: the words and overrides of the demo)."""
    from m4ser_lobes.testing import load_script

    return load_script(REPO / "recipes" / "MELD" / "demo.py", "meld_demo")


@pytest.fixture(scope="module")
def meld_run(tmp_path_factory):
    """Train the tiny MELD configuration once; returns (brain, output folder, assets)."""
    from m4ser_lobes.testing.mini_meld import generate_meld
    from m4ser_lobes.testing.models import (
        save_tiny_speech_encoder,
        save_tiny_text_encoder,
        save_tiny_whisper,
    )

    from m4ser_lobes.testing.demo import run_training

    demo = import_meld_demo()
    out = tmp_path_factory.mktemp("meld_recipe")
    corpus = generate_meld(out / "corpus", seed=0, per_split=14)
    words = demo.demo_words()
    speech = save_tiny_speech_encoder(out / "models" / "tiny-hubert", hidden_size=32)
    text = save_tiny_text_encoder(out / "models" / "tiny-bert", words=words)
    whisper = save_tiny_whisper(out / "models" / "tiny-whisper", words=words)
    overrides = demo.demo_overrides(out, epochs=1, seed=5, per_split=14)  # reuses what is above
    overrides.update(TINY, speech_encoder_source=str(speech), text_encoder_source=str(text),
                     class_weights="balanced")
    with in_process_run():
        brain, _ = run_training(MELD, overrides, ["--noprogressbar"])
    return brain, Path(brain.hparams.output_folder), {"corpus": corpus, "whisper": whisper}


def test_meld_run_reports_acc_weighted_f1_and_per_class_scores(meld_run):
    brain, folder, assets = meld_run
    for name in ("hyperparams.yaml", "history.json", "predictions.csv", "test_metrics.json",
                 "confusion_matrix.png", "configuration.json", "save/label_encoder.txt"):
        assert (folder / name).exists(), name
    metrics = json.loads((folder / "test_metrics.json").read_text())
    assert set(metrics["classes"]) == MELD_CLASSES
    assert metrics["ACC"] == metrics["WA"]
    assert len(metrics["f1"]) == len(metrics["recall"]) == len(metrics["support"]) == 7
    assert set(metrics["per_class"]) == MELD_CLASSES
    assert metrics["selection_metric"] == "W-F1"
    # The numbers are scikit-learn's on the written predictions (the whole kept test split).
    from sklearn.metrics import accuracy_score, f1_score

    with open(folder / "predictions.csv", encoding="utf-8") as fin:
        rows = list(csv.DictReader(fin))
    assert len(rows) == assets["corpus"].expected_counts["kept"]["test"]
    true, pred = [r["true"] for r in rows], [r["predicted"] for r in rows]
    assert metrics["ACC"] == pytest.approx(100 * accuracy_score(true, pred), abs=1e-3)
    assert metrics["W-F1"] == pytest.approx(
        100 * f1_score(true, pred, average="weighted", zero_division=0), abs=1e-3)
    configuration = json.loads((folder / "configuration.json").read_text())
    assert configuration["corpus"] == "MELD"
    assert "class weights: balanced" in configuration["summary"]


def test_meld_selects_on_dev_weighted_f1(meld_run):
    brain, folder, _ = meld_run
    assert brain.selection_metric == "W-F1"
    metas = [(p / "CKPT.yaml").read_text() for p in (folder / "save").glob("CKPT+*")]
    assert metas and all("W-F1:" in meta for meta in metas)
    hparams = (folder / "hyperparams.yaml").read_text()
    assert "selection_metric: W-F1" in hparams and "num_emotions: 7" in hparams
    assert "lr: 0.002" in hparams  # the command line wins over hparams/meld_overrides.yaml


def test_lcl_anchors_without_positive_are_logged(meld_run):
    _, folder, _ = meld_run
    history = json.loads((folder / "history.json").read_text())
    share = history[0]["train"]["LCL_no_positive"]
    assert 0.0 < share < 1.0  # 7 classes in batches of 8: some anchors are alone in their class


def test_class_weights_change_the_loss(meld_run):
    import speechbrain as sb
    import torch

    from m4ser_lobes.brain import unwrap
    from m4ser_lobes.data.dataio import dataio_prep
    from m4ser_lobes.data.labels import balanced_class_weights, label_counts

    brain, _, _ = meld_run
    encoder = brain.hparams.label_encoder
    counts = label_counts(brain.hparams.train_annotation)
    names = [encoder.decode_ndim(i) for i in range(len(encoder))]
    expected = balanced_class_weights([counts.get(n, 0) for n in names])
    assert brain.emotion_class_weights.tolist() == pytest.approx(expected)
    assert len(set(counts.values())) > 1  # the kept training split is imbalanced

    # One training batch through the Brain's own data pipeline (labels in encoder order).
    datasets, _ = dataio_prep({"train": brain.hparams.train_annotation},
                              unwrap(brain.modules.model).text_encoder.tokenizer,
                              label_encoder_path=str(Path(brain.hparams.save_folder)
                                                     / "label_encoder.txt"),
                              with_corrections=False)
    batch = next(iter(sb.dataio.dataloader.make_dataloader(datasets["train"], batch_size=16)))
    brain.modules.eval()
    losses = {}
    with torch.no_grad():
        predictions = brain.compute_forward(batch, sb.Stage.VALID)
        for name, weights in (("weighted", brain.emotion_class_weights), ("plain", None)):
            brain.on_stage_start(sb.Stage.VALID)
            saved, brain.emotion_class_weights = brain.emotion_class_weights, weights
            try:
                losses[name] = brain.compute_objectives(predictions, batch, sb.Stage.VALID).item()
            finally:
                brain.emotion_class_weights = saved
    assert losses["weighted"] != pytest.approx(losses["plain"], abs=1e-6), losses


def test_meld_model_exports_and_classifies_seven_labels(meld_run, tmp_path):
    from m4ser_lobes.inference import export
    from m4ser_lobes.inference.classifier import M4SERClassifier

    brain, folder, assets = meld_run
    exported = tmp_path / "export"
    status = export.main(["--checkpoint", str(folder), "--out", str(exported), "--asr-model",
                          str(assets["whisper"]), "--repo-id", "m4ser/tiny-meld-test"])
    assert status == 0
    classifier = M4SERClassifier.from_hparams(source=str(exported), run_opts={"device": "cpu"})
    assert set(classifier.classes) == MELD_CLASSES
    test = json.loads(Path(brain.hparams.test_annotation).read_text())
    utt = next(iter(test.values()))
    probs, score, index, labels = classifier.classify_file(utt["wav"], transcript=utt["transcript"])
    assert probs.shape[-1] == 7 and labels[0] in MELD_CLASSES


# ------------------------------------------------------------------ configuration (nothing built)
def meld_values(*args):
    """The checked values of ``recipes/MELD/train.py hparams/m4ser.yaml <args>``."""
    import speechbrain as sb

    argv = [str(REPO / "hparams" / "m4ser.yaml"), "--data_folder=/d", "--hypotheses_file=null",
            "--skip_prep=True", *args]
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    return plan_run(hparams_file, overrides, MELD, run_opts).values


def test_meld_column_of_table_one():
    values = meld_values()
    assert (values["lr"], values["lr_head"], values["batch_size"], values["number_of_epochs"]) == \
        (1e-4, 1e-4, 16, 100)
    assert (values["num_emotions"], values["selection_metric"]) == (7, "W-F1")
    assert (values["alpha"], values["beta"], values["gamma"], values["lam"], values["tau"]) == \
        (0.1, 3.0, 0.01, 0.1, 0.07)  # the same loss weights as IEMOCAP
    assert values["output_folder"] == "results/m4ser_meld/seed1986"
    assert "fold" not in values and values["class_weights"] is None


TABLE_IV = {  # every row of Table IV, as the switches that run it (README.md)
    "A1": ["--modalities=speech", "--use_aed=False", "--use_aec=False", "--use_gan=False"],
    "A2": ["--modalities=text", "--use_gan=False"],
    "B1": ["--use_msr=False"],
    "B2": ["--use_mir=False", "--use_gan=False"],
    "B3": ["--use_msr=False", "--use_mir=False", "--use_gan=False"],
    "C1": ["--use_aed=False"],
    "C2": ["--use_aec=False"],
    "C3": ["--use_aed=False", "--use_aec=False"],
    "D1": ["--use_gan=False"],
    "D2": ["--use_lcl=False"],
    "D3": ["--use_gan=False", "--use_lcl=False"],
}


@pytest.mark.parametrize("row", sorted(TABLE_IV))
def test_every_table_iv_switch_is_a_valid_meld_run(row):
    values = meld_values(*TABLE_IV[row], f"--experiment_name=meld_{row}")
    assert values["output_folder"] == f"results/meld_{row}/seed1986"
    for switch in TABLE_IV[row]:
        key, value = switch[2:].split("=")
        assert str(values[key]) == value


@pytest.mark.parametrize("args, message", [
    (["--fold=2"], "--fold is not a key of"),
    (["--class_weights=inverse"], "class_weights='inverse' is not allowed: it should be 'balanced'"),
    (["--selection_metric=ACC"], "it should be 'UA', 'WA' or 'W-F1'"),
    (["--use_gam=False"], "--use_gam is not a key of"),
    (["--trim_miscut=[train, valid]"], "trim_miscut=['train', 'valid'] is not allowed"),
])
def test_meld_configuration_errors_are_one_line(args, message):
    with pytest.raises(ConfigError) as error:
        meld_values(*args)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_data_section_alone_is_refused():
    with pytest.raises(ConfigError, match="pass the model YAML instead"):
        plan_run(REPO / "hparams" / "meld.yaml", {"data_folder": "/d"}, MELD)


@pytest.mark.parametrize("corpus", [IEMOCAP, MELD], ids=["IEMOCAP", "MELD"])
def test_own_manifests_with_skip_prep_are_accepted(corpus, tmp_path):
    """What the cross-corpus and few-shot studies pass: their own manifests, no prep."""
    values = plan_run(REPO / "hparams" / "m4ser.yaml", {
        "data_folder": "unused", "skip_prep": True, "train_annotation": f"{tmp_path}/a.json",
        "valid_annotation": f"{tmp_path}/b.json", "test_annotation": f"{tmp_path}/c.json",
        "hypotheses_file": "missing.json", "experiment_name": "cross"}, corpus).values
    assert values["train_annotation"] == f"{tmp_path}/a.json"
    assert values["test_annotation"] == f"{tmp_path}/c.json"
