"""IEMOCAP data prep on the synthetic release: parsers, manifests, folds, validation, skipping."""

import json
import logging
from collections import Counter
from pathlib import Path

import m4ser_lobes.corpora.iemocap as _IEMOCAP_PREP
import pytest

from m4ser_lobes.testing.mini_iemocap import generate_iemocap

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "IEMOCAP"
prep = _IEMOCAP_PREP  # as train.py's

IemocapPrepError = prep.IemocapPrepError
SCHEMA = {"wav", "duration", "emo", "speaker", "gender", "session", "transcript", "hypothesis"}


def load_fold(save_folder, k):
    folder = save_folder / f"fold{k}"
    return {s: json.loads((folder / f"{s}.json").read_text()) for s in prep.SPLITS}


@pytest.fixture
def small(tmp_path):
    """A fresh small corpus that a test may break (2 kept utterances per dialog)."""
    return generate_iemocap(tmp_path / "data", seed=5, utterances_per_dialog=2)


def prepare_small(corpus, save_folder, **kwargs):
    kwargs.setdefault("hypotheses", corpus.hypotheses)
    kwargs.setdefault("expected_utterances", None)
    kwargs.setdefault("valid_ratio", 0.25)
    return prep.prepare_iemocap(corpus.root, save_folder, **kwargs)


# ----------------------------------------------------------------------------------- parsers
@pytest.mark.parametrize("line, expected", [
    ("[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]",
     ("Ses01F_impro01_F000", "neu", 6.2901, 8.2357)),
    ("[140.2250 - 145.6000]\tSes03M_impro05a_M019\texc\t[4.0000, 3.5000, 3.0000]\r\n",
     ("Ses03M_impro05a_M019", "exc", 140.225, 145.6)),
    ("[1.0 - 2.5]  Ses05M_script01_1b_F003  xxx  [3.0, 3.0, 3.0]",
     ("Ses05M_script01_1b_F003", "xxx", 1.0, 2.5)),
])
def test_parse_evaluation_header(line, expected):
    header = prep.parse_evaluation_header(line)
    assert (header.utt_id, header.label, header.start, header.end) == expected
    assert len(header.vad) == 3


@pytest.mark.parametrize("line", [
    "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", "C-E2:\tNeutral state;\t()",
    "A-E3:\tval 3; act 2; dom  2;\t()", "", "[6.2901 - 8.2357]\tSes01F_impro01_F000",
])
def test_parse_evaluation_header_rejects_other_lines(line):
    assert prep.parse_evaluation_header(line) is None


@pytest.mark.parametrize("line, expected", [
    ("Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.",
     ("Ses01F_impro01_F000", 6.2901, 8.2357, "Excuse me.")),
    ("Ses03M_impro05a_M001 [12.5-14.0]: Oh, [LAUGHTER] great!\r\n",
     ("Ses03M_impro05a_M001", 12.5, 14.0, "Oh, [LAUGHTER] great!")),
    ("Ses01F_script01_1_MXX0 [100.0000-101.0000]: Hmm.",
     ("Ses01F_script01_1_MXX0", 100.0, 101.0, "Hmm.")),
])
def test_parse_transcription_line(line, expected):
    assert tuple(prep.parse_transcription_line(line)) == expected


@pytest.mark.parametrize("line", ["M: [BREATHING]", "Ses01F_impro01_F000: no times", ""])
def test_parse_transcription_line_rejects_other_lines(line):
    assert prep.parse_transcription_line(line) is None


@pytest.mark.parametrize("utt_id, speaker, gender, session", [
    ("Ses01F_impro01_F000", "Ses01F", "F", 1),
    ("Ses01F_impro01_M013", "Ses01M", "M", 1),
    ("Ses03M_impro05a_F007", "Ses03F", "F", 3),  # character 15 is "_" here
    ("Ses05M_script01_1b_M021", "Ses05M", "M", 5),
])
def test_speaker_gender_session(utt_id, speaker, gender, session):
    assert prep.speaker_of(utt_id) == speaker
    assert prep.gender_of(utt_id) == gender
    assert prep.session_of(utt_id) == session


@pytest.mark.parametrize("bad", ["Ses01F_impro01", "hello", "Ses01F_impro01_X000"])
def test_speaker_of_rejects_non_ids(bad):
    with pytest.raises(ValueError, match="not an IEMOCAP utterance id"):
        prep.speaker_of(bad)


def test_constants():
    assert prep.EMOTION_MAP == {"neu": "neu", "ang": "ang", "sad": "sad", "hap": "hap",
                                "exc": "hap"}
    assert prep.NUM_UTTERANCES == sum(prep.UTTERANCES_PER_SESSION.values()) == 5531


# ------------------------------------------------------------------------ manifests and folds
def test_manifests_match_the_ground_truth(mini_iemocap, mini_iemocap_manifests):
    truth = {k: u for k, u in mini_iemocap.utterances.items() if u.emotion is not None}
    hyps = json.loads(mini_iemocap.hypotheses.read_text())["hypotheses"]
    for k in range(1, 6):
        fold = load_fold(mini_iemocap_manifests, k)
        ids = [set(fold[s]) for s in prep.SPLITS]
        assert set().union(*ids) == set(truth)
        assert sum(map(len, ids)) == len(truth)  # disjoint
        assert {fold["test"][u]["session"] for u in fold["test"]} == {k}
        assert k not in {e["session"] for s in ("train", "valid") for e in fold[s].values()}
        # 10 % of the 160 training utterances, stratified: 4 of each class.
        assert Counter(e["emo"] for e in fold["valid"].values()) == dict.fromkeys(
            ("neu", "ang", "sad", "hap"), 4)
    entries = {}
    for s in prep.SPLITS:
        entries.update(load_fold(mini_iemocap_manifests, 1)[s])
    for utt_id, e in entries.items():
        u = truth[utt_id]
        assert set(e) == SCHEMA
        assert e["wav"].startswith("/") and e["wav"].endswith(f"/{u.dialog}/{utt_id}.wav")
        assert e["duration"] == pytest.approx(u.num_samples / 16000, abs=1e-4)
        assert e["emo"] == u.emotion == ("hap" if u.label == "exc" else u.label)
        assert (e["speaker"], e["gender"], e["session"]) == (
            f"Ses0{u.session}{u.gender}", u.gender, u.session)
        assert e["transcript"] == u.transcript and "\r" not in e["transcript"]
        assert e["hypothesis"] == hyps[utt_id]
    assert any(truth[u].label == "exc" for u in entries)
    assert any(truth[u].label == "hap" for u in entries)
    assert sum(e["hypothesis"] == "" for e in entries.values()) == 1
    odd = [u for u in entries if u.startswith("Ses03M_impro05a_")]
    assert {entries[u]["gender"] for u in odd} == {"F", "M"}
    assert all(entries[u]["speaker"] == "Ses03" + u[-4] for u in odd)


def test_filtered_labels_and_decoys_are_ignored(mini_iemocap, mini_iemocap_manifests):
    summary = json.loads((mini_iemocap_manifests / "summary.json").read_text())
    filtered = Counter(u.label for u in mini_iemocap.utterances.values() if u.emotion is None)
    assert summary["dropped_labels"] == dict(filtered)
    assert summary["per_class"] == {"ang": 50, "hap": 50, "neu": 50, "sad": 50}
    assert summary["per_session"] == {str(s): 40 for s in range(1, 6)}
    assert summary["folds"]["fold3"] == {"train": 144, "valid": 16, "test": 40}
    files = prep._evaluation_files(mini_iemocap.root / "Session1" / "dialog" / "EmoEvaluation")
    assert [p.stem for p in files] == sorted(
        d for d in {u.dialog for u in mini_iemocap.utterances.values()} if d.startswith("Ses01"))


def test_count_assertion_fires_and_subset_switch_disables_it(small, tmp_path):
    with pytest.raises(IemocapPrepError, match=r"expected 5531.*expected_utterances=None"):
        prep.prepare_iemocap(small.root, tmp_path / "out", hypotheses=small.hypotheses)
    assert not (tmp_path / "out").exists()  # nothing written before validation passed
    with pytest.raises(IemocapPrepError, match="expected 41"):
        prepare_small(small, tmp_path / "out", expected_utterances=41)
    summary = prepare_small(small, tmp_path / "out", expected_utterances=40)
    assert summary["num_utterances"] == 40
    per_session = {s: 8 for s in range(1, 6)}
    assert prepare_small(small, tmp_path / "out2", expected_utterances=per_session)
    with pytest.raises(IemocapPrepError, match=r"Session2: 8 \(expected 9\)"):
        prepare_small(small, tmp_path / "out3", expected_utterances={**per_session, 2: 9})


def test_missing_wav_is_named(small, tmp_path):
    victim = next(u for u in small.utterances.values() if u.emotion and u.session == 2)
    wav = small.root / f"Session2/sentences/wav/{victim.dialog}/{victim.utt_id}.wav"
    wav.unlink()
    with pytest.raises(IemocapPrepError, match=victim.utt_id + r"\.wav: missing"):
        prepare_small(small, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_wav_of_a_filtered_label_does_not_matter(small, tmp_path):
    victim = next(u for u in small.utterances.values() if u.emotion is None)
    (small.root / f"Session{victim.session}/sentences/wav/{victim.dialog}/"
     f"{victim.utt_id}.wav").unlink()
    assert prepare_small(small, tmp_path / "out")["num_utterances"] == 40


def test_unreadable_wav_is_named(small, tmp_path):
    victim = next(u for u in small.utterances.values() if u.emotion)
    wav = small.root / f"Session{victim.session}/sentences/wav/{victim.dialog}/{victim.utt_id}.wav"
    wav.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(IemocapPrepError, match=f"{victim.utt_id}.wav: unreadable"):
        prepare_small(small, tmp_path / "out")


def test_missing_transcription_file_and_line_are_named(small, tmp_path):
    transcription = small.root / "Session4" / "dialog" / "transcriptions" / "Ses04M_impro02.txt"
    victim = next(u.utt_id for u in small.utterances.values()
                  if u.emotion and u.dialog == "Ses04M_impro02")
    lines = transcription.read_text().splitlines()
    transcription.write_text("\n".join(x for x in lines if not x.startswith(victim)) + "\n")
    with pytest.raises(IemocapPrepError, match=f"Ses04M_impro02.txt: no line for {victim}"):
        prepare_small(small, tmp_path / "out")
    transcription.unlink()
    with pytest.raises(IemocapPrepError, match="Ses04M_impro02.txt: missing"):
        prepare_small(small, tmp_path / "out")


def test_malformed_header_and_unknown_label_name_the_line(small, tmp_path):
    path = small.root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    original = path.read_text()
    path.write_text(original + "[12.0 - 13.0] Ses01F_impro01_F099 neu\n")
    with pytest.raises(IemocapPrepError, match=r"Ses01F_impro01.txt:\d+: cannot parse"):
        prepare_small(small, tmp_path / "out")
    path.write_text(original + "[12.0 - 13.0]\tSes01F_impro01_F099\tjoy\t[3.0, 3.0, 3.0]\n")
    with pytest.raises(IemocapPrepError, match="unknown emotion code 'joy'"):
        prepare_small(small, tmp_path / "out")


def test_wrong_data_folder(tmp_path):
    with pytest.raises(IemocapPrepError, match="IEMOCAP_full_release"):
        prep.prepare_iemocap(tmp_path, tmp_path / "out")


# -------------------------------------------------------------------------------- hypotheses
def test_missing_hypotheses_error_or_null(small, tmp_path):
    cache = json.loads(small.hypotheses.read_text())
    victim = sorted(cache["hypotheses"])[3]
    del cache["hypotheses"][victim]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(cache))
    with pytest.raises(IemocapPrepError, match=f"partial.json.*{victim}.*missing_hypothesis"):
        prepare_small(small, tmp_path / "out", hypotheses=partial)
    prepare_small(small, tmp_path / "out", hypotheses=partial, missing_hypothesis="null")
    entries = {}
    for s in prep.SPLITS:
        entries.update(load_fold(tmp_path / "out", 1)[s])
    assert entries[victim]["hypothesis"] is None
    assert sum(e["hypothesis"] is None for e in entries.values()) == 1


def test_without_hypotheses_the_field_is_null(small, tmp_path):
    prepare_small(small, tmp_path / "out", hypotheses=None)
    test = load_fold(tmp_path / "out", 2)["test"]
    assert test and all(e["hypothesis"] is None for e in test.values())


def test_unreadable_cache_is_named(small, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(IemocapPrepError, match="hypothesis cache .*bad.json: not valid JSON"):
        prepare_small(small, tmp_path / "out", hypotheses=bad)
    with pytest.raises(IemocapPrepError, match="nope.json: hypothesis cache not found"):
        prepare_small(small, tmp_path / "out", hypotheses=tmp_path / "nope.json")


# ------------------------------------------------------------------------ validation options
def test_validation_split_is_seeded(small, tmp_path):
    prepare_small(small, tmp_path / "a", seed=1)
    prepare_small(small, tmp_path / "b", seed=1)
    prepare_small(small, tmp_path / "c", seed=2)
    valid = {name: [set(load_fold(tmp_path / name, k)["valid"]) for k in range(1, 6)]
             for name in "abc"}
    assert valid["a"] == valid["b"]
    assert valid["a"] != valid["c"]


def test_validation_on_test_fold_is_explicit_and_logged(small, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        prepare_small(small, tmp_path / "out", validation="test_fold")
    assert "validation on the test session" in caplog.text
    for k in range(1, 6):
        fold = load_fold(tmp_path / "out", k)
        assert fold["valid"] == fold["test"]
        assert len(fold["train"]) == 32
    with pytest.raises(ValueError, match="validation must be one of"):
        prepare_small(small, tmp_path / "x", validation="test")


def test_default_validation_logs_no_warning(small, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        prepare_small(small, tmp_path / "out")
    assert "test session" not in caplog.text


# ------------------------------------------------------------------------ skipping work done
def test_skip_when_done_redo_when_options_or_outputs_change(small, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = prepare_small(small, out)
    calls = []
    real_read_corpus = prep.read_corpus
    monkeypatch.setattr(prep, "read_corpus", lambda *a: calls.append(1) or real_read_corpus(*a))

    assert prepare_small(small, out) == first
    assert calls == []  # skipped: the corpus was not read again

    prepare_small(small, out, seed=99)  # option changed
    assert calls == [1]
    (out / "fold4" / "valid.json").unlink()  # output missing
    prepare_small(small, out, seed=99)
    assert calls == [1, 1] and (out / "fold4" / "valid.json").is_file()

    cache = json.loads(small.hypotheses.read_text())
    cache["hypotheses"][sorted(cache["hypotheses"])[0]] = "changed"
    small.hypotheses.write_text(json.dumps(cache))  # same path, new content
    prepare_small(small, out, seed=99)
    assert calls == [1, 1, 1]
    assert prep.prepare_iemocap(small.root, out, skip_prep=True) is None
    assert not list(out.rglob("*.tmp"))


def test_only_requested_folds_are_written(small, tmp_path):
    summary = prepare_small(small, tmp_path / "out", folds=[2, 5])
    assert sorted(p.name for p in (tmp_path / "out").glob("fold*")) == ["fold2", "fold5"]
    assert set(summary["folds"]) == {"fold2", "fold5"}
    with pytest.raises(ValueError, match="folds"):
        prepare_small(small, tmp_path / "x", folds=[6])


def test_cli(small, tmp_path, capsys):
    prep.main([str(small.root), str(tmp_path / "out"), "--hypotheses", str(small.hypotheses),
               "--subset", "--valid-ratio", "0.25"])
    assert '"num_utterances": 40' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="expected 5531"):
        prep.main([str(small.root), str(tmp_path / "out2")])


# ------------------------------------------------------------------ hints work where printed
def _hint_options(message):
    """The train.py overrides (``--key=``) and prep CLI options (``--opt``) a message suggests."""
    import re

    train = set(re.findall(r"--(\w+)=", message))
    cli = set(re.findall(r"(--[a-z][a-z-]*)(?![\w=])", message)) - {f"--{k}" for k in train}
    return train, cli


def _yaml_keys():
    """The keys train.py accepts: the model YAML's and IEMOCAP's data section's."""
    from m4ser_lobes.experiment.run import merged_overrides
    from m4ser_lobes.experiment.settings import load_values

    return set(load_values(RECIPE.parents[1] / "hparams" / "m4ser.yaml",
                           merged_overrides(prep.IEMOCAP.data_file, {"data_folder": "/d"})))


def _prep_errors(small, tmp_path):
    """One message per prep error that suggests options."""
    cache = json.loads(small.hypotheses.read_text())
    del cache["hypotheses"][sorted(cache["hypotheses"])[0]]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(cache))
    attempts = [
        dict(hypotheses=partial),
        dict(hypotheses=tmp_path / "nope.json"),
        dict(expected_utterances=41),
        dict(valid_ratio=0.001),
    ]
    messages = []
    for kwargs in attempts:
        with pytest.raises(IemocapPrepError) as error:
            prepare_small(small, tmp_path / "out", **kwargs)
        messages.append(str(error.value))
    with pytest.raises(IemocapPrepError) as error:
        prep.prepare_iemocap(tmp_path / "empty", tmp_path / "out")
    return messages + [str(error.value)]


def test_error_hints_name_options_train_py_and_the_cli_accept(small, tmp_path):
    yaml_keys = _yaml_keys()
    from m4ser_lobes.text import asr

    cli_options = {o for parser in (prep.build_parser(), asr.build_parser())
                   for action in parser._actions for o in action.option_strings}
    messages = _prep_errors(small, tmp_path)
    suggested = set()
    for message in messages:
        train, cli = _hint_options(message)
        assert train <= yaml_keys, (train - yaml_keys, message)
        assert cli <= cli_options, (cli - cli_options, message)
        suggested |= train
    assert {"hypotheses_file", "text_source", "expected_utterances", "valid_ratio",
            "data_folder"} <= suggested
    assert "hypotheses=None" not in " ".join(messages)  # not an option of either command


def test_suggested_transcript_run_passes_train_py_checks():
    import speechbrain as sb

    from m4ser_lobes.experiment.run import plan_run

    yaml_file = RECIPE.parents[1] / "hparams" / "m4ser.yaml"
    hparams_file, run_opts, overrides = sb.parse_arguments(
        [str(yaml_file), "--data_folder=/d", "--hypotheses_file=null", "--text_source=transcript",
         "--use_aed=False", "--use_aec=False"])
    plan_run(hparams_file, overrides, prep.IEMOCAP, run_opts)


def test_prep_defaults_are_one_set():
    import inspect

    parameters = inspect.signature(prep.prepare_iemocap).parameters
    cli = prep.build_parser().parse_args(["data", "save"])
    assert parameters["seed"].default == cli.seed == prep.DEFAULT_SEED
    assert parameters["validation"].default == cli.validation == prep.DEFAULT_VALIDATION
    assert parameters["valid_ratio"].default == cli.valid_ratio == prep.DEFAULT_VALID_RATIO
    assert parameters["expected_utterances"].default == prep.expected_utterances_of(cli)
    assert inspect.signature(prep.split_fold).parameters["seed"].default == prep.DEFAULT_SEED
