"""A run's settings (m4ser_lobes.experiment.settings via plan_run): one meaning per configuration,
checked by pydantic before any work, one line per refusal; the fingerprint holds what changes
results only.

Values are read as train.py reads them: ``sb.parse_arguments`` on a command line, then
:func:`m4ser_lobes.experiment.run.plan_run` (nothing built, prepared or written).
"""

import json
from pathlib import Path

import pytest
import speechbrain as sb

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.corpora.meld import MELD
from m4ser_lobes.experiment import settings as cfg
from m4ser_lobes.experiment.ablations import TABLE_IV as ROWS
from m4ser_lobes.experiment.run import plan_run, run_identity
from m4ser_lobes.utils import identity

REPO = Path(__file__).resolve().parents[3]
YAML = REPO / "hparams" / "m4ser.yaml"
NO_GAN = ["--use_gan=False"]
TABLE_IV = {label: [f"--{k}={v}" for k, v in overrides.items()] for label, (_, overrides) in ROWS.items()}


@pytest.fixture(scope="module")
def hypotheses(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "hyps.json"
    path.write_text(json.dumps({"hypotheses": {}}))
    return path


def plan(hypotheses, *args, corpus=IEMOCAP):
    """The Run of ``train.py hparams/m4ser.yaml <args>``, as train.py plans it."""
    given = {a.split("=", 1)[0] for a in args}
    defaults = [f"--{k}={v}" for k, v in (("data_folder", "/data"), ("hypotheses_file", hypotheses))
                if f"--{k}" not in given]
    hparams_file, run_opts, overrides = sb.parse_arguments([str(YAML), *defaults, *args])
    return plan_run(hparams_file, overrides, corpus, run_opts)


# ------------------------------------------------------------------------------ every key
def test_every_plain_key_of_both_corpora_is_checked(hypotheses):
    for corpus in (IEMOCAP, MELD):
        values = plan(hypotheses, corpus=corpus).values
        checked = set(cfg.ModelSettings.model_fields) | set(corpus.settings.model_fields)
        # objects read as None; the rest is built from checked keys by !ref
        built = {k for k, v in values.items() if v is None} | {
            "prepare_folder", "dataloader_options", "test_dataloader_options"}
        unchecked = set(values) - checked - built
        assert not unchecked, f"{corpus.name}: keys without a check: {sorted(unchecked)}"


@pytest.mark.parametrize("row", sorted(TABLE_IV))
def test_every_table_iv_row_is_valid(hypotheses, row):
    plan(hypotheses, *TABLE_IV[row])


BAD = [
    # argument, key, the value as the message shows it, words of what is allowed
    ("--use_gan=no", "use_gan", "'no'", "valid boolean"),
    ("--use_lcl=off", "use_lcl", "'off'", "valid boolean"),
    ("--use_gan=Flase", "use_gan", "'Flase'", "valid boolean"),
    ("--use_msr=1", "use_msr", "1", "valid boolean"),
    ("--skip_prep=no", "skip_prep", "'no'", "valid boolean"),
    ("--modalities=audio", "modalities", "'audio'", "'both', 'speech' or 'text'"),
    ("--validation=test", "validation", "'test'", "'train_sessions' or 'test_fold'"),
    ("--text_source=asr", "text_source", "'asr'", "'hypothesis' or 'transcript'"),
    ("--alpha=-0.1", "alpha", "-0.1", "greater than or equal to 0"),
    ("--beta=.nan", "beta", "nan", "greater than or equal to 0"),
    ("--gamma=.inf", "gamma", "inf", "finite number"),
    ("--tau=0", "tau", "0", "greater than 0"),
    ("--lr=0", "lr", "0", "greater than 0"),
    ("--lr=True", "lr", "True", "valid number"),
    ("--dropout=1.0", "dropout", "1.0", "less than 1"),
    ("--valid_ratio=1", "valid_ratio", "1", "less than 1"),
    ("--batch_size=0", "batch_size", "0", "greater than or equal to 1"),
    ("--d_model=32.5", "d_model", "32.5", "valid integer"),
    ("--number_of_epochs=ten", "number_of_epochs", "'ten'", "valid integer"),
    ("--fold=6", "fold", "6", "less than or equal to 5"),
    ("--num_emotions=6", "num_emotions", "6", "4"),
    ("--max_audio_seconds=0", "max_audio_seconds", "0", "greater than 0"),
    ("--num_workers=-1", "num_workers", "-1", "greater than or equal to 0"),
    ("--class_weights=inverse", "class_weights", "'inverse'", "'balanced'"),
    ("--selection_metric=ACC", "selection_metric", "'ACC'", "'UA', 'WA' or 'W-F1'"),
]


@pytest.mark.parametrize("argument, key, shown, allowed", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_refused_in_one_line(hypotheses, argument, key, shown, allowed):
    with pytest.raises(cfg.ConfigError) as error:
        plan(hypotheses, argument)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{key}={shown} is not allowed: it should be"), message
    assert allowed in message


def test_booleans_and_choices_say_the_fix(hypotheses):
    with pytest.raises(cfg.ConfigError, match=r"\(--use_gan=True or --use_gan=False\)$"):
        plan(hypotheses, "--use_gan=no")


def test_unknown_and_repeated_keys_and_placeholders_are_one_line(hypotheses):
    with pytest.raises(cfg.ConfigError, match=r"--use_gann is not a key of .*check its spelling"):
        plan(hypotheses, "--use_gann=False")
    with pytest.raises(cfg.ConfigError, match=r"given twice"):
        plan(hypotheses, "--lr=0.1", "--lr=0.2")
    with pytest.raises(cfg.ConfigError, match=r"data_folder has no value; .*--data_folder=<value>"):
        plan_run(YAML, {"text_source": "transcript"}, IEMOCAP)
    with pytest.raises(cfg.ConfigError, match=r"data section.*pass the model YAML"):
        plan_run(IEMOCAP.data_file, {"data_folder": "/d"}, IEMOCAP)


def test_meld_keys_are_meld_only(hypotheses):
    with pytest.raises(cfg.ConfigError, match="--fold is not a key"):
        plan(hypotheses, "--fold=2", corpus=MELD)
    with pytest.raises(cfg.ConfigError, match=r"trim_miscut=\['val'\] is not allowed"):
        plan(hypotheses, "--trim_miscut=[val]", corpus=MELD)
    run = plan(hypotheses, corpus=MELD)
    assert (run.values["num_emotions"], run.values["lr"], run.values["selection_metric"]) == (7, 1e-4, "W-F1")


def test_run_option_given_replaces_the_yaml_value_defaults_do_not(hypotheses):
    assert plan(hypotheses, "--precision=bf16").values["precision"] == "bf16"
    values = plan(hypotheses).values  # SpeechBrain's defaults do not replace the YAML's
    assert values["ckpt_interval_minutes"] == 15 and values["find_unused_parameters"] is True


COMBINATIONS = [
    (["--modalities=speech"], r"use_gan=True needs .*H_inv.*modalities=speech.*--use_gan=False"),
    (["--use_mir=False"], r"use_gan=True needs .*use_mir=False.*--use_gan=False"),
    (["--modalities=speech", *NO_GAN], r"modalities=speech with use_aed=True and use_aec=True.*"
                                       r"--use_aed=False --use_aec=False"),
    (["--d_model=30", "--nhead=4"], r"d_model=30 is not divisible by nhead=4"),
    (["--hypotheses_file=null"], r"hypotheses_file=null: pass --hypotheses_file=.*"
                                 r"--text_source=transcript --use_aed=False --use_aec=False$"),
    # Table VI's setting: a transcript has no ASR error for AED to find or AEC to correct.
    (["--text_source=transcript"], r"^text_source=transcript with use_aed=True and use_aec=True: "
                                   r".*every token KEEP.*add --use_aed=False --use_aec=False$"),
    (["--text_source=transcript", "--use_aed=False"],
     r"^text_source=transcript with use_aec=True: .*add --use_aec=False$"),
    (["--hypotheses_file=/no/such/hyps.json"], r"/no/such/hyps.json does not exist"),
]


@pytest.mark.parametrize("arguments, message", COMBINATIONS, ids=[" ".join(c[0]) for c in COMBINATIONS])
def test_combination_the_model_cannot_run_is_refused(hypotheses, arguments, message):
    with pytest.raises(cfg.ConfigError, match=message) as error:
        plan(hypotheses, *arguments)
    assert "\n" not in str(error.value)


def test_the_suggested_transcript_runs_pass(hypotheses):
    """Every fix the refusals print runs: Table VI's row, and the one without a cache."""
    for arguments in (["--text_source=transcript", "--use_aed=False", "--use_aec=False"],
                      ["--hypotheses_file=null", "--text_source=transcript", "--use_aed=False",
                       "--use_aec=False"]):
        assert plan(hypotheses, *arguments).values["text_source"] == "transcript"
    from m4ser_lobes.experiment.ablations import EXTRA_ROWS

    table_vi = EXTRA_ROWS["gt_text (Table VI)"][1]
    gt_text = plan(hypotheses, *(f"--{k}={v}" for k, v in table_vi.items()))
    assert (gt_text.values["use_aed"], gt_text.values["use_aec"]) == (False, False)


def test_own_manifests_without_prep_need_no_cache(tmp_path):
    run = plan("null", "--skip_prep=True", f"--train_annotation={tmp_path}/a.json",
               f"--valid_annotation={tmp_path}/b.json", f"--test_annotation={tmp_path}/c.json")
    assert run.values["valid_annotation"] == f"{tmp_path}/b.json"


# ------------------------------------------------------------------------------ fingerprint
def test_fingerprint_holds_what_changes_results_only(hypotheses, tmp_path):
    base = plan(hypotheses).settings
    same = plan(hypotheses, "--num_workers=7", "--cpu_threads=3", "--skip_prep=True",
                "--overwrite=True", f"--results_folder={tmp_path}", "--data_folder=/elsewhere",
                "--ckpt_interval_minutes=3", "--experiment_name=x", "--fold=2").settings
    assert same == base
    assert identity.differences(base, plan(hypotheses, "--use_gan=False").settings) == [
        "use_gan: True -> False"]
    assert identity.differences(base, plan(hypotheses, "--lr=0.001").settings) == [
        "lr: 1e-05 -> 0.001", "lr_discriminator: 1e-05 -> 0.001", "lr_head: 1e-05 -> 0.001",
        "lr_speech_encoder: 1e-05 -> 0.001", "lr_text_encoder: 1e-05 -> 0.001"]


def test_the_data_is_part_of_the_identity(hypotheses, tmp_path):
    run = plan(hypotheses)
    manifests = {}
    for split in ("train", "valid", "test"):
        manifests[split] = tmp_path / f"{split}.json"
        manifests[split].write_text(json.dumps({"u1": {"wav": "/a/u1.wav", "emo": "hap",
                                                       "transcript": "yes"}}))
    first = run_identity(run, manifests)
    moved = json.loads(manifests["test"].read_text())
    moved["u1"]["wav"] = "/elsewhere/u1.wav"  # the same corpus moved: same identity
    manifests["test"].write_text(json.dumps(moved))
    assert run_identity(run, manifests) == first
    moved["u1"]["transcript"] = "no"  # another corpus: another identity
    manifests["test"].write_text(json.dumps(moved))
    assert run_identity(run, manifests)["data"] != first["data"]


def test_describe_tells_ablations_apart(hypotheses):
    full = cfg.describe(plan(hypotheses).values)
    speech = cfg.describe(plan(hypotheses, *TABLE_IV["A(1) only speech"]).values)
    wo_aed = cfg.describe(plan(hypotheses, *TABLE_IV["C(1) w/o AED"]).values)
    assert (full["aec"], full["gan"], speech["text_encoder"], wo_aed["aec"]) == (
        "selective", True, None, "full")
    assert len({full["summary"], speech["summary"], wo_aed["summary"]}) == 3
    assert full["summary"].startswith("speech + text, MSR, MIR, AED, AEC selective, GAN, LCL")
    assert speech["summary"].startswith("speech only, ") and "modalities" not in speech["summary"]


@pytest.mark.parametrize("arguments, protocol, line", [
    ([], {"selection_metric": "UA", "validation": "train_sessions", "valid_ratio": 0.1,
          "seed": 1986, "optimistic": False,
          "batching": {"bucketing": False, "batch_size": 16, "max_batch_seconds": None,
                       "num_buckets": None}},
     ("checkpoint of the best UA on a 10 % hold-out of the training sessions "
      "(validation=train_sessions), seed 1986; random batches of 16")),
    (["--validation=test_fold", "--bucketing=True", "--max_batch_seconds=60", "--seed=3"],
     {"selection_metric": "UA", "validation": "test_fold", "valid_ratio": None, "seed": 3,
      "optimistic": True, "batching": {"bucketing": True, "batch_size": 16,
                                       "max_batch_seconds": 60, "num_buckets": 20}},
     ("OPTIMISTIC: checkpoint of the best UA on the test session itself (validation=test_fold), "
      "seed 3; duration-bucketed batches of up to 60 s of audio (20 buckets)")),
])
def test_the_summary_says_how_the_checkpoint_is_chosen(hypotheses, tmp_path, arguments, protocol,
                                                       line):
    """configuration.json (configuration_of = describe + corpus) and the run's first log line."""
    from m4ser_lobes.experiment.run import configuration_of

    train = tmp_path / "train.json"
    train.write_text(json.dumps({"u1": {"hypothesis": "yes", "emo": "hap"}}))
    configuration = configuration_of(plan(hypotheses, *arguments), None, {"train": train})
    assert {k: configuration[k] for k in cfg.PROTOCOL_KEYS} == protocol
    assert configuration["summary"].endswith("; " + line)
    assert configuration["corpus"] == "IEMOCAP"


def test_meld_validates_on_its_dev_split(hypotheses):
    described = cfg.describe(plan(hypotheses, corpus=MELD).values)
    assert (described["validation"], described["valid_ratio"], described["selection_metric"]) == (
        "dev", None, "W-F1")
    assert "checkpoint of the best W-F1 on the dev set (validation=dev)" in described["summary"]


def test_reading_values_builds_nothing_even_after_hyperpyyaml_ran(hypotheses):
    from hyperpyyaml import load_hyperpyyaml

    assert load_hyperpyyaml("c: !new:collections.Counter {a: 1}\n")["c"]["a"] == 1
    values = plan(hypotheses, "--speech_encoder_source=/nonexistent/hubert").values
    assert values["speech_encoder"] is None and values["model"] is None
