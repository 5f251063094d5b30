"""Cross-corpus and few-shot study pieces: label mapping, target split, shot draws, fine-tuning
start, tables, the study command line, its data folders and how its runs are recognised
(m4ser_lobes/experiment/studies.py, recipes/studies/study_runner.py)."""

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import m4ser_lobes.corpora.iemocap as _IEMOCAP_PREP
import m4ser_lobes.corpora.meld as _MELD_PREP
import pytest

from m4ser_lobes.experiment import finetune, studies
from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.experiment.studies import StudyError

REPO = Path(__file__).resolve().parents[3]
iemocap_prepare = _IEMOCAP_PREP
meld_prepare = _MELD_PREP


def import_study(name):
    """``recipes/studies/<name>.py`` as a module (it imports ``study_runner`` beside it)."""
    from m4ser_lobes.testing import load_script

    return load_script(REPO / "recipes" / "studies" / f"{name}.py", f"study_{name}")


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
    origin = finetune.seed_finetune_checkpoint(tmp_path / "source" / "save", target_save,
                                               lrs={"head": 0.01})
    assert origin == finetune.checkpoint_origin(tmp_path / "source" / "save")
    assert (target_save / "label_encoder.txt").read_text() == "'neu' => 0\n"

    new_model, new_optimizer, new_counter = _recoverables(torch, 1)
    target = Checkpointer(target_save, {"model": new_model, "optimizer_head": new_optimizer,
                                        "counter": new_counter})
    assert target.find_checkpoint(max_key="UA") is None  # scored when the run starts
    target.recover_if_possible()
    for key, value in new_model.state_dict().items():
        assert torch.equal(value, best_weights[key])
    assert new_counter.current == 0
    assert new_optimizer.state_dict()["state"] == {}
    assert new_optimizer.param_groups[0]["lr"] == 0.01
    # Seeding again (a resumed run) changes nothing.
    before = sorted(p.name for p in target_save.iterdir())
    finetune.seed_finetune_checkpoint(tmp_path / "source" / "save", target_save)
    assert sorted(p.name for p in target_save.iterdir()) == before


def test_the_finetuning_start_is_scored_and_kept_when_no_epoch_beats_it(make_brain, tmp_path):
    """finetune.score_start: the start's validation metrics, measured as evaluation measures
    them, go into its CKPT.yaml, so the best-of selection keeps and picks it until a fine-tuned
    epoch does better."""
    source, loader = make_brain(tmp_path / "source")
    source.on_fit_start()
    source.checkpointer.save_checkpoint(meta={"UA": 50.0}, end_of_epoch=True)
    target, _ = make_brain(tmp_path / "target")
    save = Path(target.hparams.save_folder)
    finetune.seed_finetune_checkpoint(source.hparams.save_folder, save)
    assert target.checkpointer.find_checkpoint(max_key="UA") is None  # not scored yet

    stats = finetune.score_start(target, loader)
    # The same numbers as the source model evaluated on the same utterances.
    source.evaluate(loader, max_key="UA")
    tested = json.loads((Path(source.hparams.output_folder) / "test_metrics.json").read_text())
    assert {k: stats[k] for k in ("WA", "UA", "W-F1")} == pytest.approx(
        {k: tested[k] for k in ("WA", "UA", "W-F1")})
    start = target.checkpointer.find_checkpoint(max_key="UA")
    assert start.path.name == finetune.START and start.meta["UA"] == stats["UA"]
    assert start.meta["init_from"]["source_checkpoint"]  # the rest of the meta kept
    assert "epoch: 0 - valid loss" in (Path(target.hparams.output_folder)
                                       / "train_log.txt").read_text()
    assert finetune.score_start(target, loader) is None  # scored once (a resume keeps it)

    # Epochs saved as on_stage_end saves them: a worse one leaves the start the best, a better
    # one replaces it.
    target.on_fit_start()
    assert target.hparams.epoch_counter.current == 0  # training starts from the start
    for delta, best in ((-10.0, finetune.START), (+10.0, None)):
        target.checkpointer.save_and_keep_only(meta={"UA": stats["UA"] + delta},
                                               max_keys=["UA"])
        chosen = target.checkpointer.find_checkpoint(max_key="UA")
        assert (chosen.path.name == finetune.START) == (best == finetune.START)
    assert not (save / finetune.START).exists()


def test_finetuning_needs_a_finished_source_run(tmp_path):
    with pytest.raises(ConfigError, match="run .or finish. the source run first"):
        finetune.seed_finetune_checkpoint(tmp_path / "nothing", tmp_path / "ft")


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
    assert "| Baseline | 61.0 | 53.0 | 58.5 | 52.4 | 61.0 | 58.9 | 59.0 | 57.4 |" \
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
def parse(tmp_path, *extra, study="few_shot"):
    script = import_study(study)
    options = script.Options if study == "few_shot" else script.study_runner.StudyOptions
    argv = ["hparams/m4ser.yaml", f"--iemocap_folder={tmp_path}", f"--meld_folder={tmp_path}",
            *extra]
    return script.study_runner.parse_command_line(argv, options, f"{study}.py", script.__doc__)


def test_study_command_line_passes_run_overrides_through(tmp_path):
    study = parse(tmp_path, "--rows=baseline,m4ser", "--split_seed=3", "--lr=0.001",
                  "--noprogressbar", "--finetune_lr=1e-5", "--subset=True", "--shots=5,10",
                  "--device=cpu")
    options = study.options
    assert options.rows == ["baseline", "m4ser"] and options.split_seed == 3
    assert options.finetune_lr == 1e-5 and options.subset is True  # YAML 1.2, as a run reads it
    assert options.shots == [5, 10] and options.draws == 5
    assert study.overrides == {"lr": 0.001}
    assert study.run_opts["noprogressbar"] is True and study.run_opts["device"] == "cpu"
    assert options.directions == ["ie2me", "me2ie"] and options.select_on == "target"
    assert parse(tmp_path, "--shots=20").options.shots == [20]
    assert parse(tmp_path, study="cross_corpus").options.rows == list(studies.ROWS)


@pytest.mark.parametrize("extra, message", [
    ("--use_gan=True", "--use_gan is set by the study"),
    ("--selection_metric=WA", "set by the study"),
    ("--init_from=abc", "set by the study"),
    ("--rows=bogus", "--rows='bogus': it should be 'baseline', "),
    ("--directions=ie2msp", "--directions='ie2msp'"),
    ("--select_on=test", "it should be 'target' or 'source'"),
    ("--split_seed=1.5", "--split_seed=1.5"),
    ("--shots=5,0", "--shots='5,0'"),
    ("--draws=True", "--draws=True"),
    ("--iemocap_hypotheses=nowhere.json", "not a file; pass an ASR cache"),
    ("--lrr=0.1", "--lrr is not a key of .*the study's own options are --iemocap_folder"),
])
def test_study_command_line_refusals(tmp_path, extra, message):
    with pytest.raises(StudyError, match=message) as error:
        parse(tmp_path, extra)
    assert "\n" not in str(error.value)


def test_study_command_line_needs_both_corpus_folders(tmp_path):
    script = import_study("cross_corpus")
    options = script.study_runner.StudyOptions
    with pytest.raises(StudyError, match="--meld_folder is missing: pass --meld_folder=<the MELD"):
        script.study_runner.parse_command_line(
            ["hparams/m4ser.yaml", f"--iemocap_folder={tmp_path}"], options, "x.py", "")
    with pytest.raises(StudyError, match="--meld_folder='nowhere': not a folder; pass the MELD"):
        script.study_runner.parse_command_line(
            ["hparams/m4ser.yaml", f"--iemocap_folder={tmp_path}", "--meld_folder=nowhere"],
            options, "x.py", "")
    with pytest.raises(StudyError, match="usage: python x.py hparams/m4ser.yaml"):
        script.study_runner.parse_command_line([f"--iemocap_folder={tmp_path}"], options,
                                               "x.py", "")


def test_study_scripts_print_their_help_and_refuse_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    shown = subprocess.run([sys.executable, "recipes/studies/cross_corpus.py", "--help"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Table VIII: cross-corpus") and "--select_on" in shown.stdout
    refused = subprocess.run([sys.executable, "recipes/studies/few_shot.py", "hparams/m4ser.yaml",
                              f"--iemocap_folder={tmp_path}", f"--meld_folder={tmp_path}",
                              "--draws=0"], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: recipes/studies/few_shot.py: --draws=0: it should be greater than or equal to 1"
        "  (M4SER_TRACEBACK=1 shows the traceback)"]


# ------------------------------------------------------------------------------ data and runs
def pools_of(per_class=10):
    """Mapped corpora as ``prepare_pools`` returns them (corpus -> id -> entry)."""
    def entries(prefix, corpus):
        return {f"{prefix}{c}{i:02d}": {"emo": c, "corpus_emo": c, "wav": f"/{corpus}/{c}{i}.wav",
                                        "duration": 1.0 + i, "transcript": "a b",
                                        "hypothesis": "a c"}
                for c in studies.SHARED_CLASSES for i in range(per_class)}
    return {"iemocap": entries("Ses01F_", "iemocap"), "meld": entries("train_dia", "meld")}


def test_direction_data_is_written_once_in_a_keyed_folder(tmp_path):
    study = parse(tmp_path, f"--study_folder={tmp_path / 'study'}")
    runner, pools = import_study("few_shot").study_runner, pools_of()
    paths = runner.write_direction_data(study.options, pools, "ie2me")
    folder = paths["folder"]
    assert folder.parent == tmp_path / "study" / "data" / "ie2me"
    parts = {n: json.loads(paths[n].read_text()) for n in ("train", "valid", "test", "target_valid")}
    assert set(parts["train"]) == set(pools["iemocap"])  # the whole source
    assert parts["valid"] == parts["target_valid"] and not set(parts["valid"]) & set(parts["test"])
    assert set(parts["valid"]) | set(parts["test"]) == set(pools["meld"])
    assert len(json.loads(paths["hypotheses"].read_text())["hypotheses"]) == 80
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    assert runner.write_direction_data(study.options, pools, "ie2me") == paths  # done: kept
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*.json")} == stamps
    shots = runner.write_shot_data(study.options, paths, 2, draw=0)
    assert shots["train"].parent == folder / "shots" / "draw0" / "k2"
    assert len(json.loads(shots["train"].read_text())) == 8
    # Another split, another corpus content or another selection: another folder, this one kept.
    others = [parse(tmp_path, f"--study_folder={tmp_path / 'study'}", "--split_seed=5").options,
              parse(tmp_path, f"--study_folder={tmp_path / 'study'}", "--select_on=source").options]
    changed = {**pools, "meld": {**pools["meld"], "train_diasad00": {
        **pools["meld"]["train_diasad00"], "hypothesis": "other"}}}
    folders = {runner.write_direction_data(o, pools, "ie2me")["folder"] for o in others}
    folders.add(runner.write_direction_data(study.options, changed, "ie2me")["folder"])
    assert len(folders | {folder}) == 4
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*.json")} == stamps
    source = json.loads(runner.write_direction_data(others[1], pools, "ie2me")["valid"]
                        .read_text())
    assert set(source) < set(pools["iemocap"])  # select_on=source: held out of the source


def test_study_runs_are_recognised_by_their_identity(tmp_path):
    """Finished = same settings, same manifests, same start; anything else is refused before
    training (the records are written by run.claim_folder, as train() writes them)."""
    from m4ser_lobes.experiment import run as runs

    folder = f"--study_folder={tmp_path / 'study'}"
    study = parse(tmp_path, folder, "--text_source=transcript")
    runner = import_study("few_shot").study_runner
    paths = runner.write_direction_data(study.options, pools_of(), "me2ie")
    run = runner.source_plan(study, "me2ie", "baseline", paths)
    assert run.values["skip_prep"] is True and run.values["num_emotions"] == 4
    assert run.values["selection_metric"] == "UA" and run.values["use_gan"] is False
    assert run.output_folder == (tmp_path / "study" / "runs" / "me2ie" / "baseline" / "source")
    assert runner.run_state(run) == "todo"
    runs.claim_folder(run, runs.manifests_of(run.values))
    (run.output_folder / "test_metrics.json").write_text("{}")
    assert runner.run_state(run) == "done"

    with pytest.raises(ConfigError, match="other settings .lr: 0.0001 -> 0.002.*--study_folder="):
        runner.run_state(runner.source_plan(parse(tmp_path, folder, "--text_source=transcript",
                                                  "--lr=0.002"), "me2ie", "baseline", paths))
    resplit = parse(tmp_path, folder, "--text_source=transcript", "--split_seed=5")
    other = runner.write_direction_data(resplit.options, pools_of(), "me2ie")
    with pytest.raises(ConfigError, match="other data or another start .data: "):
        runner.run_state(runner.source_plan(resplit, "me2ie", "baseline", other))
    started = runner.plan(study, "me2ie", {**runner.run_overrides(study, "me2ie", "baseline", paths,
                                                         run.output_folder),
                                  "init_from": "0123abcd"})
    with pytest.raises(ConfigError, match="init_from: None -> 0123abcd"):
        runner.run_state(started)
    assert runner.run_state(started, start_known=False) == "done"  # the start is compared later
    overwrite = parse(tmp_path, folder, "--text_source=transcript", "--overwrite=True")
    assert runner.run_state(runner.source_plan(overwrite, "me2ie", "baseline", other)) == "todo"


def test_each_direction_trains_with_its_source_corpus_column_of_table_i(tmp_path):
    """IE->ME with IEMOCAP's Table I settings (lr 1e-5), ME->IE with MELD's (hparams/meld.yaml:
    lr 1e-4); fine-tuning inherits its source's; the command line overrides both."""
    import yaml

    from m4ser_lobes.corpora.meld import MELD

    folder = f"--study_folder={tmp_path / 'study'}"
    few_shot = import_study("few_shot")
    runner = few_shot.study_runner
    class Loader(yaml.SafeLoader):
        """Plain values; tagged ones (!ref, !new: ...) as None."""

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    meld = yaml.load(MELD.data_file.read_text(), Loader=Loader)
    model = yaml.load((REPO / "hparams" / "m4ser.yaml").read_text(), Loader=Loader)

    def planned(*extra):
        study = parse(tmp_path, folder, "--text_source=transcript", *extra, study="few_shot")
        plans = {}
        for direction in studies.DIRECTIONS:
            paths = runner.write_direction_data(study.options, pools_of(), direction)
            shots = runner.write_shot_data(study.options, paths, 2, draw=0)
            plans[direction] = (runner.source_plan(study, direction, "baseline", paths),
                                few_shot.finetune_plan(study, direction, "baseline", paths, shots,
                                                       2, 0, "0123abcd"), study)
        return plans

    plans = planned()
    keys = ("lr", "batch_size", "number_of_epochs")
    ie2me, ie2me_tuned, study = plans["ie2me"]
    me2ie, me2ie_tuned, _ = plans["me2ie"]
    assert {k: ie2me.values[k] for k in keys} == {k: model[k] for k in keys}
    assert {k: me2ie.values[k] for k in keys} == {k: meld[k] for k in keys}
    assert (ie2me.values["lr"], me2ie.values["lr"]) == (1e-5, 1e-4)
    assert me2ie.values["lr_head"] == me2ie.values["lr_text_encoder"] == 1e-4
    assert me2ie.values["num_emotions"] == 4  # the study's, not MELD's 7
    # Fine-tuning: the source's settings, its own number of epochs.
    assert (ie2me_tuned.values["lr"], me2ie_tuned.values["lr"]) == (1e-5, 1e-4)
    assert me2ie_tuned.values["batch_size"] == meld["batch_size"]
    assert me2ie_tuned.values["number_of_epochs"] == study.options.finetune_epochs == 10
    training = runner.training_settings(study, "me2ie", me2ie)
    assert training["source"] == "MELD" and training["column"] == "hparams/meld.yaml"
    assert training["settings"]["lr"] == 1e-4 and training["overridden"] == []
    note = runner.training_note("me2ie", training)
    assert note.startswith("ME→IE trains with the Table I settings of its source, MELD "
                           "(hparams/meld.yaml): lr 0.0001, batch_size 16")
    assert runner.training_settings(study, "ie2me", ie2me)["column"] == "hparams/m4ser.yaml"
    tuned = runner.training_settings(study, "me2ie", me2ie_tuned,
                                     tuple(few_shot.finetune_extra(study.options)))
    assert tuned["overridden"] == ["number_of_epochs"]

    # The command line wins over both columns; --finetune_lr over the source's lr.
    plans = planned("--lr=0.002", "--batch_size=4", "--finetune_lr=3e-4")
    for source, tuned_run, _ in plans.values():
        assert (source.values["lr"], source.values["batch_size"]) == (0.002, 4)
        assert (tuned_run.values["lr"], tuned_run.values["batch_size"]) == (3e-4, 4)


def test_study_runs_are_named_after_their_direction(tmp_path):
    """A run's logs and configuration.json name both corpora (never "IEMOCAP test" for MELD's
    test part) and its final log line gives the target's metrics."""
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.corpora.meld import MELD

    study = parse(tmp_path, f"--study_folder={tmp_path / 'study'}", "--text_source=transcript")
    runner = import_study("cross_corpus").study_runner
    names = {}
    for direction in studies.DIRECTIONS:
        paths = runner.write_direction_data(study.options, pools_of(), direction)
        run = runner.source_plan(study, direction, "baseline", paths)
        names[direction] = (run.corpus.name, run.corpus.metrics)
        assert run.corpus.data_file == IEMOCAP.data_file
    assert names == {"ie2me": ("IEMOCAP→MELD", MELD.metrics),
                     "me2ie": ("MELD→IEMOCAP", IEMOCAP.metrics)}


def test_tables_name_the_encoders_the_runs_used():
    encoders = {"baseline": "tiny-hubert + tiny-bert", "m4ser": "tiny-hubert + tiny-bert"}
    table = studies.cross_corpus_table({}, rows=["baseline", "m4ser"], encoders=encoders)
    assert [r["method"] for r in table["rows"]] == ["Baseline (tiny-hubert + tiny-bert)",
                                                    "+ AED & AEC (M4SER)"]
    text = studies.table_markdown(table)
    assert "| Baseline (tiny-hubert + tiny-bert) | — | 53.0 |" in text
    assert "HuBERT + BERT" not in text
    few = studies.few_shot_table({}, rows=["baseline"], shots=[5], encoders=encoders)
    assert few["rows"][0]["method"] == "Baseline (tiny-hubert + tiny-bert)"
    assert studies.method_label("baseline") == "Baseline"  # no run: no encoder claimed
