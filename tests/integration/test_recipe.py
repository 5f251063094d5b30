"""The IEMOCAP recipe end to end on the generated corpus: generate -> prepare -> train -> test.

Also the learning check of issue #4: with a fixed seed the full model clearly beats chance and
beats the speech-only and text-only baselines (the corpus puts arousal in the audio and valence
in the words, so only fusion can solve it).
"""

import csv
import json
import math
from pathlib import Path

import pytest

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.testing.demo import run_training
from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap
from m4ser_lobes.testing.models import TINY_OVERRIDES, override_argv

REPO = Path(__file__).resolve().parents[2]

EPOCHS = 6
# The tiny sizes with 4 heads: the learning check's margins were measured with them.
SMALL = override_argv("", {**TINY_OVERRIDES, "nhead": 4, "batch_size": 8, "lr": 0.002})[1:]
BASELINE = ["--use_aed=False", "--use_aec=False", "--use_gan=False", "--use_lcl=False"]
CONFIGS = {
    "full": [],
    "speech_only": ["--modalities=speech", *BASELINE],
    "text_only": ["--modalities=text", *BASELINE],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Train each configuration once (lazily) and return {name: (output_folder, metrics)}."""
    from m4ser_lobes.testing.demo import demo_overrides

    out = tmp_path_factory.mktemp("recipe")
    corpus = generate_iemocap(out / "corpus", seed=0)
    base = demo_overrides(out, {"data_folder": str(corpus.root),
                                "hypotheses_file": str(corpus.hypotheses), "fold": 1,
                                "expected_utterances": None}, corpus_words(), EPOCHS, 3)
    cache = {}

    def run(name):
        if name not in cache:
            extra = [*SMALL, f"--experiment_name={name}", *CONFIGS[name], "--noprogressbar"]
            metrics = run_training(IEMOCAP, base, extra)[1]
            cache[name] = (out / "results" / name / "fold1" / "seed3", metrics)
        return cache[name]

    return run


@pytest.mark.slow
def test_full_pipeline_writes_what_speechbrain_users_expect(runs):
    folder, metrics = runs("full")
    for name in ("train_log.txt", "log.txt", "env.log", "hyperparams.yaml", "history.json",
                 "predictions.csv", "test_metrics.json", "confusion_matrix.png",
                 "save/label_encoder.txt"):
        assert (folder / name).exists(), name
    assert list((folder / "save").glob("CKPT+*/model.ckpt"))
    assert list((folder / "save").glob("CKPT+*/optimizer_discriminator.ckpt"))
    history = json.loads((folder / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    for epoch in history:
        terms = epoch["train"]
        for key in ("L_ER", "L_AED", "L_AEC", "L_G", "L_D", "L_GAN", "L_LCL",
                    "D(H_S^spe)", "D(H_T^spe)", "D(H_inv)"):
            assert math.isfinite(terms[key]), key
        assert terms["L_G"] >= 2 * math.log(2) - 1e-6  # L_G's minimum, reached at D = 0.5
        assert terms["L_D"] <= 0
    predictions = (folder / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 40  # header + Session 1 of the generated corpus
    assert set(metrics) >= {"WA", "UA", "W-F1", "confusion"}
    # Calibration of the written probabilities (6 decimals in the CSV): NLL by hand.
    rows = list(csv.DictReader(predictions))
    nll = -sum(math.log(max(float(r[f"p_{r['true']}"]), 1e-12)) for r in rows) / len(rows)
    assert metrics["calibration"]["NLL"] == pytest.approx(nll, abs=1e-4)
    assert 0 <= metrics["calibration"]["ECE"] <= 100 and metrics["calibration"]["reliability"]


@pytest.mark.slow
def test_fusion_beats_each_modality_and_chance(runs):
    full = runs("full")[1]
    speech = runs("speech_only")[1]
    text = runs("text_only")[1]
    summary = {k: (m["WA"], m["UA"]) for k, m in
               (("full", full), ("speech", speech), ("text", text))}
    assert full["UA"] >= 50.0, summary  # chance is 25 %
    assert full["UA"] > speech["UA"] + 5, summary
    assert full["UA"] > text["UA"] + 5, summary
