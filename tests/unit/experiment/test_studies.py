"""Cross-corpus and few-shot study pieces: label mapping, target split, shot draws, fine-tuning
start, tables, and the study command line (m4ser_lobes/experiment/studies.py,
recipes/studies/study_runner.py)."""

import json
import math
from collections import Counter
from pathlib import Path

import m4ser_lobes.corpora.iemocap as _IEMOCAP_PREP
import m4ser_lobes.corpora.meld as _MELD_PREP
import pytest

from m4ser_lobes.experiment import studies
from m4ser_lobes.experiment.studies import StudyError
from m4ser_lobes.testing.models import import_script

REPO = Path(__file__).resolve().parents[3]
iemocap_prepare = _IEMOCAP_PREP
meld_prepare = _MELD_PREP


def import_runner():
    """``recipes/studies/study_runner.py`` as a module."""
    return import_script(REPO / "recipes" / "studies" / "study_runner.py")


def labels_of(counts):
    """utt_id -> class with ``counts[class]`` utterances of each class."""
    return {f"{c}_{i:03d}": c for c, n in counts.items() for i in range(n)}


# ------------------------------------------------------------------------------ mapping
def test_mapping_covers_what_each_prep_writes():
    meld_labels = set(meld_prepare.EMOTIONS)
    assert set(studies.LABEL_MAPS["meld"]) | set(studies.DROPPED_LABELS["meld"]) == meld_labels
    assert not set(studies.LABEL_MAPS["meld"]) & set(studies.DROPPED_LABELS["meld"])
    # IEMOCAP: exactly the labels iemocap_prepare writes (hap and exc merged as hap).
    assert set(studies.LABEL_MAPS["iemocap"]) == set(iemocap_prepare.EMOTION_MAP.values())
    for corpus in studies.CORPORA:
        assert sorted(set(studies.LABEL_MAPS[corpus].values())) == sorted(studies.SHARED_CLASSES)


@pytest.mark.parametrize("label, shared", [("neutral", "neu"), ("joy", "hap"), ("anger", "ang"),
                                           ("sadness", "sad"), ("surprise", None),
                                           ("fear", None), ("disgust", None)])
def test_meld_labels_map_to_the_shared_classes(label, shared):
    assert studies.map_label("meld", label) == shared


def test_unknown_labels_and_corpora_are_refused():
    with pytest.raises(StudyError, match="exc"):
        studies.map_label("iemocap", "exc")  # the prep merges it; a raw label means raw data
    with pytest.raises(StudyError, match="unknown corpus"):
        studies.map_label("msp", "neu")


def test_map_entries_keeps_the_corpus_label_and_drops_the_rest():
    entries = {"a": {"emo": "sadness", "wav": "a.wav"}, "b": {"emo": "fear", "wav": "b.wav"},
               "c": {"emo": "joy", "wav": "c.wav"}}
    mapped = studies.map_entries(entries, "meld")
    assert mapped == {"a": {"emo": "sad", "corpus_emo": "sadness", "wav": "a.wav"},
                      "c": {"emo": "hap", "corpus_emo": "joy", "wav": "c.wav"}}
    assert entries["a"]["emo"] == "sadness"  # the input is not modified


# ------------------------------------------------------------------------------ 30/70 split
def test_target_split_is_seeded_disjoint_complete_and_stratified():
    counts = {"neu": 40, "hap": 17, "ang": 23, "sad": 10}
    labels = labels_of(counts)
    valid, test = studies.stratified_split(labels, 0.3, seed=7)
    assert not set(valid) & set(test)
    assert set(valid) | set(test) == set(labels)
    held = Counter(labels[u] for u in valid)
    assert held == {c: round(0.3 * n) for c, n in counts.items()}
    assert (valid, test) == studies.stratified_split(labels, 0.3, seed=7)
    assert valid != studies.stratified_split(labels, 0.3, seed=8)[0]
    # One class's split does not depend on the others.
    only_sad = {u: c for u, c in labels.items() if c == "sad"}
    assert studies.stratified_split(only_sad, 0.3, seed=7)[0] == [
        u for u in valid if labels[u] == "sad"]


def test_target_split_keeps_one_of_each_class_on_both_sides_and_refuses_singletons():
    valid, test = studies.stratified_split(labels_of({"neu": 2, "sad": 3}), 0.05, seed=0)
    assert Counter(u.split("_")[0] for u in valid) == {"neu": 1, "sad": 1}
    assert len(test) == 3
    with pytest.raises(StudyError, match="'ang' has 1"):
        studies.stratified_split(labels_of({"neu": 4, "ang": 1}), 0.3, seed=0)
    with pytest.raises(StudyError, match="ratio"):
        studies.stratified_split(labels_of({"neu": 4}), 1.0, seed=0)


# ------------------------------------------------------------------------------ few-shot draws
def test_shots_are_k_per_class_from_validation_only_and_the_rest_selects():
    labels = labels_of({"neu": 12, "hap": 8, "ang": 9, "sad": 6})
    train, rest = studies.draw_shots(labels, 5, seed=3, draw=0)
    assert Counter(labels[u] for u in train) == {c: 5 for c in studies.SHARED_CLASSES}
    assert not set(train) & set(rest)
    assert set(train) | set(rest) == set(labels)


def test_shot_draws_are_seeded_nested_and_differ_between_draws():
    labels = labels_of({"neu": 30, "hap": 30, "ang": 30, "sad": 30})
    draws = {k: studies.draw_shots(labels, k, seed=3, draw=0)[0] for k in (5, 10, 20)}
    assert set(draws[5]) < set(draws[10]) < set(draws[20])
    assert draws[5] == studies.draw_shots(labels, 5, seed=3, draw=0)[0]
    assert draws[5] != studies.draw_shots(labels, 5, seed=3, draw=1)[0]
    assert draws[5] != studies.draw_shots(labels, 5, seed=4, draw=0)[0]


@pytest.mark.parametrize("shots", [0, -1, True, 2.0])
def test_bad_shot_counts_are_refused(shots):
    with pytest.raises(StudyError):
        studies.draw_shots(labels_of({"neu": 5}), shots, seed=0, draw=0)


def test_too_many_shots_for_a_class_are_refused():
    with pytest.raises(StudyError, match="class 'sad' has 3 validation utterances"):
        studies.draw_shots(labels_of({"neu": 10, "sad": 3}), 3, seed=0, draw=0)


def test_check_all_classes_names_the_missing_class():
    with pytest.raises(StudyError, match="ang"):
        studies.check_all_classes({"a": {"emo": "neu"}, "b": {"emo": "hap"},
                                   "c": {"emo": "sad"}}, "ie2me test part")


# ------------------------------------------------------------------------------ fine-tuning start
def _recoverables(torch, seed):
    from speechbrain.utils.epoch_loop import EpochCounter

    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    return model, optimizer, EpochCounter(limit=10)


def test_finetuning_starts_from_the_best_source_checkpoint(tmp_path):
    import torch
    from speechbrain.utils.checkpoints import Checkpointer

    model, optimizer, counter = _recoverables(torch, 0)
    source = Checkpointer(tmp_path / "source" / "save",
                          {"model": model, "optimizer_head": optimizer, "counter": counter})
    best_weights = {}
    for epoch, ua in ((1, 60.0), (2, 40.0)):  # the best is the first, not the last
        counter.current = epoch
        model(torch.randn(2, 3)).sum().backward()
        optimizer.step()
        if ua == 60.0:
            best_weights = {k: v.clone() for k, v in model.state_dict().items()}
        source.save_checkpoint(meta={"UA": ua, "WA": ua}, end_of_epoch=True)
    (tmp_path / "source" / "save" / "label_encoder.txt").write_text("'neu' => 0\n")

    target_save = tmp_path / "ft" / "save"
    target_save.mkdir(parents=True)
    origin = studies.seed_finetune_checkpoint(tmp_path / "source" / "save", target_save,
                                              lrs={"head": 0.01})
    assert origin == studies.checkpoint_origin(tmp_path / "source" / "save")
    assert (target_save / "label_encoder.txt").read_text() == "'neu' => 0\n"

    new_model, new_optimizer, new_counter = _recoverables(torch, 1)
    target = Checkpointer(target_save, {"model": new_model, "optimizer_head": new_optimizer,
                                        "counter": new_counter})
    assert target.find_checkpoint(max_key="UA") is None  # never selected as the best
    target.recover_if_possible()
    for key, value in new_model.state_dict().items():
        assert torch.equal(value, best_weights[key])
    assert new_counter.current == 0
    assert new_optimizer.state_dict()["state"] == {}
    assert new_optimizer.param_groups[0]["lr"] == 0.01
    # Seeding again (a resumed run) changes nothing.
    before = sorted(p.name for p in target_save.iterdir())
    studies.seed_finetune_checkpoint(tmp_path / "source" / "save", target_save)
    assert sorted(p.name for p in target_save.iterdir()) == before


def test_finetuning_needs_a_finished_source_run(tmp_path):
    with pytest.raises(StudyError, match="run .or finish. the source run first"):
        studies.seed_finetune_checkpoint(tmp_path / "nothing", tmp_path / "ft")


# ------------------------------------------------------------------------------ tables
METRICS = {"WA": 61.0, "UA": 59.0, "W-F1": 58.5}


def test_cross_corpus_table_has_the_papers_shape_and_numbers():
    results = {(row, d): {k: v + i for k, v in METRICS.items()}
               for i, row in enumerate(("baseline", "m4ser")) for d in studies.DIRECTIONS}
    table = studies.cross_corpus_table(results, rows=["baseline", "m4ser"])
    assert table["columns"] == [["ie2me", "ACC"], ["ie2me", "W-F1"], ["me2ie", "WA"],
                                ["me2ie", "UA"]]
    m4ser = table["rows"][1]
    assert m4ser["ours"] == {"ie2me": {"ACC": 62.0, "W-F1": 59.5},
                             "me2ie": {"WA": 62.0, "UA": 60.0}}
    assert m4ser["paper"]["me2ie"]["UA"] == 62.2
    assert table["delta"]["ours"]["ie2me"]["ACC"] == 1.0
    assert table["delta"]["paper"]["ie2me"]["ACC"] == pytest.approx(4.3)
    text = studies.table_markdown(table)
    assert "| Baseline (HuBERT + BERT) | 61.0 | 53.0 | 58.5 | 52.4 | 61.0 | 58.9 | 59.0 | 57.4 |" \
        in text
    assert "Δ Baseline" in text and "SAMS (paper only)" in text


def test_few_shot_table_reports_mean_and_spread_over_draws(tmp_path):
    results = {("m4ser", "me2ie", 5): [{"WA": 60.0, "UA": 50.0, "W-F1": 1.0},
                                       {"WA": 64.0, "UA": 52.0, "W-F1": 1.0}]}
    table = studies.few_shot_table(results, rows=["m4ser"], shots=[5])
    cell = table["rows"][0]["ours"]["me2ie"]["UA"]
    assert (cell["mean"], cell["std"], cell["draws"]) == (51.0, 1.0, 2)
    assert table["rows"][0]["ours"]["ie2me"]["ACC"]["mean"] is None  # not run
    assert table["rows"][0]["paper"]["me2ie"]["UA"] == 64.4
    json_path, md_path = studies.write_table(table, tmp_path / "few_shot", ["a note"])
    assert json.loads(json_path.read_text())["notes"] == ["a note"]
    text = md_path.read_text()
    assert "| + AED & AEC (M4SER) | 5 | — | 57.9 | — | 56.0 | 62.0 ± 2.0 (n=2) | 66.4 |" in text
    assert "MF-AED-AEC (paper only) | 60 |" in text and "- a note" in text
    finite = [v for r in table["paper_only"] for d in r["paper"].values() for v in d.values()]
    assert all(math.isfinite(v) for v in finite)


# ------------------------------------------------------------------------------ command line
def test_study_command_line_passes_train_overrides_through(tmp_path):
    runner = import_runner()
    argv = ["hparams/m4ser.yaml", f"--iemocap_folder={tmp_path}", f"--meld_folder={tmp_path}",
            "--rows=baseline,m4ser", "--split_seed=3", "--lr=0.001", "--noprogressbar",
            "--finetune_lr=1e-5", "--subset=True"]
    options = runner.parse_args(argv, {"rows": "m4ser", "finetune_lr": None}, "cross_corpus.py")
    assert options.rows == ["baseline", "m4ser"] and options.split_seed == 3
    assert options.finetune_lr == 1e-5 and options.subset is True  # YAML 1.2, as train.py
    assert options.passthrough == {"lr": "0.001"} and options.flags == ["--noprogressbar"]
    assert options.directions == ["ie2me", "me2ie"] and options.select_on == "target"


@pytest.mark.parametrize("extra, message", [
    ("--use_gan=True", "set by the study"),
    ("--selection_metric=WA", "set by the study"),
    ("--rows=bogus", "unknown"),
    ("--directions=ie2msp", "unknown"),
    ("--select_on=test", "target or source"),
])
def test_study_command_line_refusals(tmp_path, extra, message):
    runner = import_runner()
    argv = ["hparams/m4ser.yaml", f"--iemocap_folder={tmp_path}", f"--meld_folder={tmp_path}",
            extra]
    with pytest.raises(StudyError, match=message):
        runner.parse_args(argv, {"rows": "m4ser"}, "cross_corpus.py")


def test_study_command_line_needs_both_corpus_folders(tmp_path):
    runner = import_runner()
    with pytest.raises(StudyError, match="--meld_folder=None: not a folder"):
        runner.parse_args(["hparams/m4ser.yaml", f"--iemocap_folder={tmp_path}"],
                          {"rows": "m4ser"}, "cross_corpus.py")
