"""m4ser_lobes.experiment.config on hparams/m4ser.yaml: one meaning per configuration, checked before any work.

Values are read as train.py reads them: ``sb.parse_arguments`` on a command line, then
:func:`m4ser_lobes.experiment.config.load_values` (HyperPyYAML's own YAML 1.2 reading, nothing built).
"""

import json
from pathlib import Path

import m4ser_lobes.corpora.iemocap as _IEMOCAP_PREP
import pytest
import speechbrain as sb

from m4ser_lobes.experiment import config
from m4ser_lobes.testing import models as testing
from m4ser_lobes.testing.models import import_script

REPO = Path(__file__).resolve().parents[3]
YAML = REPO / "hparams" / "m4ser.yaml"
iemocap_prepare = _IEMOCAP_PREP

RULES = {**config.SCHEMA, **iemocap_prepare.HPARAM_RULES}

# Every Table IV row, as the command-line switches that run it (README.md).
NO_GAN = ["--use_gan=False"]
TABLE_IV = {label: [f"--{k}={v}" for k, v in overrides.items()]
            for label, (_, overrides) in testing.TABLE_IV.items()}


@pytest.fixture(scope="module")
def hypotheses(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "hyps.json"
    path.write_text(json.dumps({"hypotheses": {}}))
    return path


def command_line(hypotheses, *args):
    """``(values, run_opts)`` for ``train.py hparams/m4ser.yaml <args>``, as train.py reads them."""
    given = {a.split("=", 1)[0] for a in args}
    defaults = [f"--{k}={v}" for k, v in (("data_folder", "/data"), ("hypotheses_file", hypotheses))
                if f"--{k}" not in given]
    _, run_opts, overrides = sb.parse_arguments([str(YAML), *defaults, *args])
    return config.effective_values(config.load_values(YAML, overrides), run_opts), run_opts


def check(hypotheses, *args):
    values, _ = command_line(hypotheses, *args)
    return config.validate(values, RULES)


# ------------------------------------------------------------------------------ the table
def test_every_yaml_key_has_a_rule_or_is_derived(hypotheses):
    values, _ = command_line(hypotheses)
    assert set(values) == set(RULES) | config.DERIVED_KEYS


@pytest.mark.parametrize("row", sorted(TABLE_IV))
def test_every_table_iv_row_is_valid(hypotheses, row):
    check(hypotheses, *TABLE_IV[row])


# ------------------------------------------------------------------------------ bad values
BAD = [
    # argument, key, the value as the message shows it, the allowed values in the message
    ("--use_gan=no", "use_gan", "'no'", "True or False"),
    ("--use_lcl=off", "use_lcl", "'off'", "True or False"),
    ("--use_gan=Flase", "use_gan", "'Flase'", "True or False"),
    ("--use_msr=1", "use_msr", "1", "True or False"),
    ("--freeze_text_encoder=yes", "freeze_text_encoder", "'yes'", "True or False"),
    ("--skip_prep=no", "skip_prep", "'no'", "True or False"),
    ("--overwrite=yes", "overwrite", "'yes'", "True or False"),
    ("--modalities=audio", "modalities", "'audio'", "one of both, speech, text"),
    ("--validation=test", "validation", "'test'", "one of train_sessions, test_fold"),
    ("--text_source=asr", "text_source", "'asr'", "one of hypothesis, transcript"),
    ("--hst_text_source=text", "hst_text_source", "'text'", "one of align, text_specific"),
    ("--alpha=-0.1", "alpha", "-0.1", "a finite number >= 0"),
    ("--beta=.nan", "beta", "nan", "a finite number >= 0"),
    ("--gamma=.inf", "gamma", "inf", "a finite number >= 0"),
    ("--lam=-1", "lam", "-1", "a finite number >= 0"),
    ("--tau=0", "tau", "0", "a finite number > 0"),
    ("--lr=0", "lr", "0", "a finite number > 0"),
    ("--lr_discriminator=-1e-5", "lr_discriminator", "-1e-05", "a finite number > 0"),
    ("--dropout=1.0", "dropout", "1.0", "a number in [0, 1)"),
    ("--er_dropout=-0.5", "er_dropout", "-0.5", "a number in [0, 1)"),
    ("--valid_ratio=1", "valid_ratio", "1", "a number in (0, 1)"),
    ("--valid_ratio=0", "valid_ratio", "0", "a number in (0, 1)"),
    ("--batch_size=0", "batch_size", "0", "an integer >= 1"),
    ("--d_model=32.5", "d_model", "32.5", "an integer >= 1"),
    ("--number_of_epochs=ten", "number_of_epochs", "'ten'", "an integer >= 1"),
    ("--fold=6", "fold", "6", "an integer in 1..5"),
    ("--fold=0", "fold", "0", "an integer in 1..5"),
    ("--num_emotions=6", "num_emotions", "6", "one of 4"),
    ("--expected_utterances=-3", "expected_utterances", "-3", "null, a positive total"),
    ("--max_audio_seconds=0", "max_audio_seconds", "0", "a finite number > 0, or null"),
    ("--num_workers=-1", "num_workers", "-1", "an integer >= 0"),
]


@pytest.mark.parametrize("argument, key, shown, allowed", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_refused_in_one_line(hypotheses, argument, key, shown, allowed):
    with pytest.raises(config.ConfigError) as error:
        check(hypotheses, argument)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{key}={shown} is not allowed: {key} must be {allowed}")


def test_a_bad_yaml_value_of_a_run_option_is_refused():
    # --precision on the command line is a SpeechBrain run option (argparse checks its choices);
    # the YAML value is checked here.
    with pytest.raises(config.ConfigError, match=r"precision='fp8' .*one of fp32, fp16, bf16"):
        config.validate({"precision": "fp8"}, RULES)


def test_run_option_given_replaces_the_yaml_value_defaults_do_not(hypotheses):
    values, _ = command_line(hypotheses, "--precision=bf16")
    assert values["precision"] == "bf16"
    values, _ = command_line(hypotheses)  # SpeechBrain's defaults: fp32, 0 minutes, False
    assert values["ckpt_interval_minutes"] == 15 and values["find_unused_parameters"] is True
    values, _ = command_line(hypotheses, "--ckpt_interval_minutes=0")
    assert values["ckpt_interval_minutes"] == 0


# ------------------------------------------------------------------------------ combinations
COMBINATIONS = [
    (["--modalities=speech"], r"use_gan=True needs .*H_inv.*modalities=speech.*--use_gan=False"),
    (["--modalities=text"], r"use_gan=True needs .*modalities=text.*--use_gan=False"),
    (["--use_mir=False"], r"use_gan=True needs .*use_mir=False.*--use_gan=False"),
    (["--modalities=speech", *NO_GAN], r"modalities=speech with use_aed=True and use_aec=True.*"
                                       r"--use_aed=False --use_aec=False"),
    (["--modalities=speech", *NO_GAN, "--use_aed=False"], r"use_aec=True.*--use_aec=False$"),
    (["--d_model=30", "--nhead=4"], r"d_model=30 is not divisible by nhead=4"),
    (["--hypotheses_file=null"], r"hypotheses_file=null: pass --hypotheses_file=.*"
                                 r"--text_source=transcript"),
    (["--hypotheses_file=/no/such/hyps.json"], r"/no/such/hyps.json does not exist"),
]


@pytest.mark.parametrize("arguments, message", COMBINATIONS, ids=[" ".join(c[0]) for c in COMBINATIONS])
def test_combination_the_model_cannot_run_is_refused(hypotheses, arguments, message):
    with pytest.raises(config.ConfigError, match=message) as error:
        check(hypotheses, *arguments)
    assert "\n" not in str(error.value)


def test_human_transcripts_need_no_cache():
    check("null", "--text_source=transcript")


# ------------------------------------------------------------------------------ fingerprint
def settings(hypotheses, *args):
    values, _ = command_line(hypotheses, *args)
    return config.run_settings(values, RULES)


def test_fingerprint_holds_what_changes_results_only(hypotheses, tmp_path):
    base = settings(hypotheses)
    # bookkeeping: same settings
    assert settings(hypotheses, "--num_workers=7", "--skip_prep=True", "--overwrite=True",
                    f"--results_folder={tmp_path}", "--data_folder=/elsewhere",
                    "--ckpt_interval_minutes=3", "--experiment_name=x", "--fold=2") == base
    moved = tmp_path / "moved.json"
    moved.write_text(hypotheses.read_text())
    assert settings(moved) == base  # the cache is identified by its content
    # what changes results
    assert config.settings_differences(base, settings(hypotheses, "--use_gan=False")) == [
        "use_gan: True -> False"]
    assert config.settings_differences(base, settings(hypotheses, "--precision=bf16")) == [
        "precision: fp32 -> bf16"]
    assert config.settings_differences(base, settings(hypotheses, "--lr=0.001")) == [
        "lr: 1e-05 -> 0.001", "lr_discriminator: 1e-05 -> 0.001", "lr_encoders: 1e-05 -> 0.001",
        "lr_head: 1e-05 -> 0.001"]
    moved.write_text(json.dumps({"hypotheses": {"u": "other"}}))
    assert [d.split(":")[0] for d in config.settings_differences(base, settings(moved))] == [
        "hypotheses_file"]


def test_rerun_conflict(tmp_path):
    folder = tmp_path / "run"
    new = {"use_gan": False, "lr": 0.1}
    assert config.rerun_conflict(folder, new) is None  # nothing there yet
    config.record_fingerprint(folder, {"use_gan": True, "lr": 0.1})
    conflict = config.rerun_conflict(folder, new)
    assert conflict == f"{folder} holds a run with other settings (use_gan: True -> False)"
    message = str(config.rerun_error(conflict))
    assert "--experiment_name=" in message and "--overwrite=True" in message
    config.record_fingerprint(folder, new)
    assert config.rerun_conflict(folder, new) is None  # same settings: resume
    legacy = tmp_path / "legacy"
    (legacy / "save" / "CKPT+2024").mkdir(parents=True)
    assert "were not recorded" in config.rerun_conflict(legacy, new)


# ------------------------------------------------------------------------------ description
@pytest.mark.parametrize("row, expected", [
    ("M4SER (full)", {"modalities": "both", "msr": True, "mir": True, "aed": True,
                      "aec": "selective", "gan": True, "lcl": True}),
    ("A(1) only speech", {"modalities": "speech", "msr": False, "mir": False, "aed": False,
                          "aec": False, "gan": False, "text_encoder": None,
                          "text_source": None}),
    ("A(2) only text", {"modalities": "text", "speech_encoder": None, "aec": False}),
    ("A(3) speech & text + concat", {"msr": False, "mir": False, "aec": False}),
    ("C(1) w/o AED", {"aed": False, "aec": "full"}),
    ("D(3) w/o GAN & LCL", {"gan": False, "lcl": False}),
])
def test_describe_tells_ablations_apart(hypotheses, row, expected):
    values, _ = command_line(hypotheses, *TABLE_IV[row])
    described = config.describe(values, config.run_settings(values, RULES))
    assert {k: described[k] for k in expected} == expected
    full, _ = command_line(hypotheses)
    if row != "M4SER (full)":
        assert described["summary"] != config.describe(full)["summary"]
        assert described["settings_digest"] != config.digest(config.run_settings(full, RULES))


def test_reading_values_builds_nothing_even_after_hyperpyyaml_ran(hypotheses):
    # load_hyperpyyaml registers its `!new:`/`!apply:` builders on ruamel's Loader class; the
    # value reader must keep ignoring tags (an encoder source that cannot load proves it).
    from hyperpyyaml import load_hyperpyyaml

    assert load_hyperpyyaml("c: !new:collections.Counter {a: 1}\n")["c"]["a"] == 1
    values, _ = command_line(hypotheses, "--speech_encoder_source=/nonexistent/hubert")
    assert values["speech_encoder"] is None and values["model"] is None


# ------------------------------------------------------------------------------ class weights, selection
@pytest.mark.parametrize("argument, allowed", [
    ("--class_weights=inverse", "one of balanced, or null"),
    ("--class_weights=True", "one of balanced, or null"),
    ("--selection_metric=ACC", "one of UA, WA, W-F1"),
    ("--selection_metric=null", "one of UA, WA, W-F1"),
])
def test_class_weights_and_selection_metric_are_checked(hypotheses, argument, allowed):
    key = argument[2:].split("=")[0]
    with pytest.raises(config.ConfigError, match=f"{key} must be {allowed}"):
        check(hypotheses, argument)


def test_class_weights_and_selection_metric_are_fingerprinted_and_described(hypotheses):
    plain = check(hypotheses)
    weighted = check(hypotheses, "--class_weights=balanced", "--selection_metric=W-F1")
    assert (plain["class_weights"], plain["selection_metric"]) == (None, "UA")
    differences = config.settings_differences(config.run_settings(plain, RULES),
                                              config.run_settings(weighted, RULES))
    assert differences == ["class_weights: None -> balanced", "selection_metric: UA -> W-F1"]
    assert "class weights" not in config.describe(plain)["summary"]
    assert "L_ER class weights: balanced" in config.describe(weighted)["summary"]


def test_own_manifests_without_prep_are_accepted(hypotheses, tmp_path):
    """The overrides of a study that brings its own manifests (cross-corpus, few-shot)."""
    values = check(hypotheses, "--skip_prep=True", f"--train_annotation={tmp_path}/a.json",
                   f"--valid_annotation={tmp_path}/b.json", f"--test_annotation={tmp_path}/c.json")
    assert values["valid_annotation"] == f"{tmp_path}/b.json"
