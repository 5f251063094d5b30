"""The cross-corpus (Table VIII) and few-shot (Table IX) study commands end to end.

Both generated corpora (the IEMOCAP look-alike, 2 kept utterances per dialog, and the MELD
look-alike, 21 rows per split), tiny random encoders, 1 epoch: ``recipes/studies/cross_corpus.py``
with the baseline row in both directions, then ``recipes/studies/few_shot.py`` with 1 shot per
class and 2 draws (the MELD look-alike's validation part holds 2-3 utterances per class), which
fine-tunes the cross-corpus runs. Each run is a real plan_run/train; reruns skip finished runs
(recognised by their identity); changed settings and a changed split are refused. No learning
rate is given: each direction trains with its source corpus's column of Table I.
"""

import json
import math
import re
from pathlib import Path

import pytest
from tiny_recipe import (BATCH_SIZE, REPO, SEED, TINY_TRAINING, in_process_run,
                         make_tiny_assets)

from m4ser_lobes.experiment import finetune, studies
from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.testing.models import TINY_OVERRIDES
from m4ser_lobes.utils import identity

#: Few-shot options: fine-tuning at a learning rate that ends worse on validation than the start
#: for IE->ME here (so the start itself is tested there), better for ME->IE.
FEW_SHOT = {"shots": 1, "draws": 2, "finetune_epochs": 1, "finetune_lr": 0.05}
TINY = {"seed": SEED, **TINY_OVERRIDES, "number_of_epochs": 1, "batch_size": BATCH_SIZE,
        **{k: v for k, v in TINY_TRAINING.items() if k != "lr"}}  # Table I's learning rates


def import_study(name):
    """``recipes/studies/<name>.py`` as a module (it imports ``study_runner`` beside it)."""
    from m4ser_lobes.testing import load_script

    return load_script(REPO / "recipes" / "studies" / f"{name}.py", f"study_{name}")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Both corpora, the tiny encoders and the common command line; runs the cross-corpus study
    once. Returns (argv builder, study folder, table, stdout of the first run)."""
    from m4ser_lobes.testing.mini_meld import generate_meld

    root = tmp_path_factory.mktemp("studies")
    assets = make_tiny_assets(root / "assets")
    meld = generate_meld(root / "meld", seed=0, per_split=21)
    folder = root / "study"

    def argv(rows="baseline", **extra):
        options = {
            "iemocap_folder": assets["data_folder"],
            "iemocap_hypotheses": assets["hypotheses_file"],
            "meld_folder": meld.root, "meld_hypotheses": meld.hypotheses, "subset": True,
            "study_folder": folder, "rows": rows, "meld_workers": 1,
            "speech_encoder_source": assets["speech_encoder_source"],
            "text_encoder_source": assets["text_encoder_source"],
            "results_folder": root / "results", **TINY, **extra}
        return (["hparams/m4ser.yaml"] + [f"--{k}={v}" for k, v in options.items()]
                + ["--noprogressbar"])

    with in_process_run():
        table = import_study("cross_corpus").main(argv())
    return argv, folder, table


def our_values(table):
    values = []
    for row in table["rows"]:
        for direction, columns in row["ours"].items():
            for value in columns.values():
                values += value["values"] if isinstance(value, dict) else [value]
    return values


def selection_of(run, metric):
    """Epoch -> validation ``metric`` (``train_log.txt``, epoch 0: the start) and the epoch of
    the tested checkpoint."""
    log = (run / "train_log.txt").read_text(encoding="utf-8")
    valid = {int(m.group(1)): float(m.group(2))
             for m in re.finditer(rf"^epoch: (\d+)\b.*valid {metric}: ([0-9.e+-]+)", log, re.M)}
    return valid, int(re.search(r"Epoch loaded: (\d+)", log).group(1))


@pytest.mark.slow
def test_cross_corpus_table(study):
    _, folder, table = study
    assert [r["row"] for r in table["rows"]] == ["baseline"]
    assert table["columns"] == [["ie2me", "ACC"], ["ie2me", "W-F1"], ["me2ie", "WA"],
                                ["me2ie", "UA"]]
    values = our_values(table)
    assert len(values) == 4 and all(math.isfinite(v) and 0 <= v <= 100 for v in values)
    assert table["rows"][0]["paper"]["ie2me"] == {"ACC": 53.0, "W-F1": 52.4}
    saved = json.loads((folder / "cross_corpus.json").read_text())
    assert saved["rows"] == table["rows"] and saved["notes"]
    text = (folder / "cross_corpus.md").read_text()
    assert "| Method | IE→ME ACC | IE→ME ACC (paper) |" in text
    # Our row names the encoders the runs used (configuration.json), not the paper's.
    assert "| Baseline (tiny-hubert + tiny-bert) |" in text and "| 53.0 |" in text
    assert "Baseline (HuBERT + BERT)" not in text
    assert "Our encoders: tiny-hubert + tiny-bert (configuration.json of the runs)" in text
    # Each direction trains with its source corpus's column of Table I, and the notes say so.
    assert "- ME→IE trains with the Table I settings of its source, MELD (hparams/meld.yaml): " \
        "lr 0.0001, batch_size 4, number_of_epochs 1 (set for this study: batch_size, " \
        "number_of_epochs)." in text
    assert "- IE→ME trains with the Table I settings of its source, IEMOCAP " \
        "(hparams/m4ser.yaml): lr 1e-05" in text
    # Each direction: trained on the source, selected on the target's 30 %, tested on its 70 %,
    # the tested checkpoint chosen with the target's metric.
    for direction, (source, target, _) in studies.DIRECTIONS.items():
        run = folder / "runs" / direction / "baseline" / "source"
        metrics = json.loads((run / "test_metrics.json").read_text())
        assert metrics["selection_metric"] == studies.SELECTION_METRICS[target]
        assert sorted(metrics["classes"]) == sorted(studies.SHARED_CLASSES)
        # Its own manifests: not the paper's protocol, so no Table IV figure beside it, and
        # configuration.json says where its checkpoint was chosen, as test_metrics.json does.
        assert "paper" not in metrics and metrics["validation"] == "valid_annotation"
        configuration = json.loads((run / "configuration.json").read_text())
        assert configuration["validation"] == "valid_annotation"
        assert "given valid_annotation manifest" in configuration["summary"]
        data = Path(table["data"][direction])
        assert data.parent == folder / "data" / direction  # a keyed folder
        parts = {n: json.loads((data / f"{n}.json").read_text())
                 for n in ("train", "valid", "test")}
        assert not set(parts["valid"]) & set(parts["test"])
        assert {e["corpus_emo"] for e in parts["train"].values()} <= set(
            studies.LABEL_MAPS[source])
        n_target = len(parts["valid"]) + len(parts["test"])
        assert abs(len(parts["valid"]) / n_target - 0.3) < 0.1
        predictions = (run / "predictions.csv").read_text().splitlines()
        assert len(predictions) == 1 + len(parts["test"])
        recorded = identity.read(run)["identity"]
        assert recorded["init_from"] is None and recorded["use_gan"] is False
        assert recorded["lr"] == {"iemocap": 1e-5, "meld": 1e-4}[source]  # Table I
        # The run is named after its direction: its log never calls MELD's test part IEMOCAP's.
        name = {"ie2me": "IEMOCAP→MELD", "me2ie": "MELD→IEMOCAP"}[direction]
        assert json.loads((run / "configuration.json").read_text())["corpus"] == name
        log = (run / "log.txt").read_text(encoding="utf-8")
        assert f"{name} test (" in log and not re.search("(^|[^→])IEMOCAP test", log, re.M)
        first = {"meld": "ACC", "iemocap": "WA"}[target]
        assert re.search(f"{name} test .*: {first} [0-9.]+  ", log)
    # MELD as the source: its test split's mis-cut clip trains trimmed, as train's and dev's do.
    meld_clip = json.loads((Path(table["data"]["me2ie"]) / "train.json").read_text())[
        "test_dia0_utt2"]
    assert "trimmed" in meld_clip["flags"]
    assert meld_clip["duration"] == pytest.approx(meld_clip["end"] - meld_clip["start"], abs=0.01)


@pytest.mark.slow
def test_few_shot_table_then_reruns_skip_and_changes_are_refused(study, capsys):
    argv, folder, cross = study
    few_shot = import_study("few_shot")
    capsys.readouterr()
    with in_process_run():
        table = few_shot.main(argv(**FEW_SHOT))
    out = capsys.readouterr().out
    assert out.count("(source): finished, skipped") == 2  # the cross-corpus runs are reused
    assert [(r["row"], r["shots"]) for r in table["rows"]] == [("baseline", 1)]
    for columns in table["rows"][0]["ours"].values():
        for cell in columns.values():
            assert cell["draws"] == 2 and len(cell["values"]) == 2
            assert cell["std"] == pytest.approx(
                math.sqrt(sum((v - cell["mean"]) ** 2 for v in cell["values"]) / 2), abs=1e-3)
    values = our_values(table)
    assert len(values) == 8 and all(math.isfinite(v) and 0 <= v <= 100 for v in values)
    paper = {(r["method"], r["shots"]): r["paper"] for r in table["paper_only"]}
    assert paper[("+ AED & AEC (M4SER)", 5)]["ie2me"]["ACC"] == 57.9
    text = (folder / "few_shot.md").read_text()
    assert "| Baseline (tiny-hubert + tiny-bert) | 1 |" in text and "(n=2)" in text
    assert "- ME→IE fine-tunes with the Table I settings of its source, MELD " \
        "(hparams/meld.yaml): lr 0.05, batch_size 4, number_of_epochs 1 (set for this study: " \
        "batch_size, lr, number_of_epochs)." in text

    assert table["data"] == cross["data"]
    tested_epochs = []
    for direction, (_, target, _) in studies.DIRECTIONS.items():
        source = folder / "runs" / direction / "baseline" / "source"
        data = Path(table["data"][direction])
        valid = json.loads((data / "target_valid.json").read_text())
        best = finetune.checkpoint_origin(source / "save", studies.SELECTION_METRICS[target])
        for draw in range(2):
            run = folder / "runs" / direction / "baseline" / "k1" / f"draw{draw}"
            shots = json.loads((data / "shots" / f"draw{draw}" / "k1" / "train.json").read_text())
            assert set(shots) <= set(valid) and len(shots) == 4  # 1 per class, from validation
            # The run's identity holds its start: the digest of the source's best checkpoint.
            assert identity.read(run)["identity"]["init_from"] == best["model_sha1"]
            assert not (run / "init.json").exists()
            assert (run / "save" / "label_encoder.txt").read_text() == (
                source / "save" / "label_encoder.txt").read_text()
            metrics = json.loads((run / "test_metrics.json").read_text())
            assert metrics["selection_metric"] == studies.SELECTION_METRICS[target]
            # The start (the source checkpoint) was scored on validation as epoch 0 and is a
            # candidate: the tested checkpoint is the best of the start and the tuned epochs.
            scores, tested = selection_of(run, studies.SELECTION_METRICS[target])
            assert sorted(scores) == [0, 1] and scores[tested] == max(scores.values())
            tested_epochs.append(tested)
            assert (run / "save" / "CKPT+init").exists() == (tested == 0)
            if tested == 0:  # the source model itself, on the same test part
                tested_source = json.loads((source / "test_metrics.json").read_text())
                assert [metrics[k] for k in ("WA", "UA", "W-F1")] == [
                    tested_source[k] for k in ("WA", "UA", "W-F1")]

    assert 0 in tested_epochs  # fine-tuning that ends worse never replaces the start

    # Rerun: everything finished is skipped, nothing is rewritten.
    done = sorted(folder.glob("runs/*/*/**/test_metrics.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    with in_process_run():
        again = few_shot.main(argv(**FEW_SHOT))
        import_study("cross_corpus").main(argv())
    out = capsys.readouterr().out
    assert out.count("finished, skipped") == 2 + 4 + 2
    assert "training in" not in out
    assert [p.stat().st_mtime_ns for p in done] == stamps
    assert again["rows"] == table["rows"]

    # Changed settings, a changed split (other manifests): refused before anything trains.
    with pytest.raises(ConfigError, match="other settings .*lr: 1e-05 -> 0.002"):
        with in_process_run():
            import_study("cross_corpus").main(argv(lr=0.002))
    with pytest.raises(ConfigError, match="other data or another start .data: .*--study_folder"):
        with in_process_run():
            import_study("few_shot").main(argv(**FEW_SHOT, split_seed=5))
    assert [p.stat().st_mtime_ns for p in done] == stamps
    assert not (folder / "study.json").exists()
