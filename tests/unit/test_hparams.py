"""hparams/m4ser.yaml is the paper's Table I configuration, readable without building models;
it holds no corpus (hparams/iemocap.yaml and hparams/meld.yaml are applied by one code path);
what it builds follows the switches (no unused encoder), and its manifests follow the split."""

import inspect
from pathlib import Path

import m4ser_lobes.corpora.iemocap as iemocap_prepare
import pytest

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.corpora.meld import MELD
from m4ser_lobes.experiment.run import load_objects, merged_overrides, plan_run
from m4ser_lobes.experiment.settings import load_values
from m4ser_lobes.testing.models import TINY_OVERRIDES

REPO = Path(__file__).resolve().parents[2]
YAML = REPO / "hparams" / "m4ser.yaml"


def values(overrides=None, corpus=IEMOCAP):
    """The plain values of a run of ``corpus`` (path keys evaluated, nothing built or checked)."""
    return load_values(YAML, merged_overrides(corpus.data_file, overrides or {"data_folder": "/d"}))


def built(key, overrides):
    return values(overrides)[key]


def test_the_model_yaml_holds_no_corpus():
    text = YAML.read_text(encoding="utf-8")
    for key in ("fold", "validation", "expected_utterances", "train_annotation", "audio_cache"):
        assert f"\n{key}:" not in text, key
    assert "num_emotions: !PLACEHOLDER" in text


def test_table_one():
    hp = values()
    assert hp["speech_encoder_source"] == "facebook/hubert-base-ls960"
    assert hp["text_encoder_source"] == "bert-base-uncased"
    assert (hp["d_model"], hp["nhead"], hp["num_emotions"]) == (768, 12, 4)
    assert (hp["alpha"], hp["beta"], hp["gamma"], hp["lam"], hp["tau"]) == (0.1, 3.0, 0.01, 0.1, 0.07)
    assert (hp["lr"], hp["batch_size"], hp["number_of_epochs"], hp["er_dropout"]) == (1e-5, 16, 100, 0.5)
    assert hp["lr_speech_encoder"] == hp["lr_text_encoder"] == hp["lr_head"] == 1e-5
    assert hp["lr_discriminator"] == 1e-5
    assert hp["discriminator_hidden"] == 256 and hp["aec_max_len"] == 16
    assert all(hp[k] for k in ("use_msr", "use_mir", "use_aed", "use_aec", "use_gan", "use_lcl"))
    assert hp["modalities"] == "both" and hp["text_source"] == "hypothesis"
    assert hp["overwrite"] is False


def test_every_ablation_has_its_own_output_folder():
    overrides = {"data_folder": "/d", "experiment_name": "wo_gan", "use_gan": False, "fold": 3}
    a = values(overrides)
    assert a["output_folder"] == "results/wo_gan/fold3/seed1986"
    assert a["use_gan"] is False
    prepared = built("prepare_folder", overrides)
    assert Path(prepared).parent == Path("results/prepared")
    assert built("test_annotation", overrides) == f"{prepared}/fold3/test.json"


def test_two_seeds_get_separate_prepared_folders(tmp_path):
    hyps = tmp_path / "hyps.json"
    hyps.write_text('{"hypotheses": {}}')
    base = {"data_folder": "/d", "hypotheses_file": str(hyps)}
    folder = built("prepare_folder", base)
    assert built("prepare_folder", base) == folder  # stable: reruns find their manifests
    assert built("train_annotation", base) == f"{folder}/fold1/train.json"
    # Everything that shapes the manifests gets its own folder ...
    for change in ({"seed": 7}, {"valid_ratio": 0.2}, {"validation": "test_fold"},
                   {"expected_utterances": None}, {"data_folder": "/other"},
                   {"hypotheses_file": None}):
        assert built("prepare_folder", {**base, **change}) != folder, change
    hyps.write_text('{"hypotheses": {"u": "a"}}')  # a completed cache: new manifests
    assert built("prepare_folder", base) != folder
    hyps.write_text('{"hypotheses": {}}')
    # ... and what does not shape them shares the folder.
    assert built("prepare_folder", {**base, "use_gan": False, "experiment_name": "x",
                                    "fold": 2}) == folder


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

    root = tmp_path_factory.mktemp("hparams_encoders")
    return (save_tiny_speech_encoder(root / "hubert", hidden_size=32, num_layers=1),
            save_tiny_text_encoder(root / "bert", words=["hello"], hidden_size=32, num_layers=1))


# A source that cannot load: building the encoder it names would raise.
MISSING = "/nonexistent/encoder"


@pytest.mark.parametrize("modalities, switches, speech, text", [
    ("speech", {"use_aed": False, "use_aec": False, "use_gan": False}, True, False),
    ("text", {"use_gan": False}, False, True),
    ("both", {}, True, True),
])
def test_only_the_encoders_a_configuration_uses_are_built(
        tiny_encoders, tmp_path, modalities, switches, speech, text):
    overrides = {
        "data_folder": "/d", "results_folder": str(tmp_path), **TINY_OVERRIDES, **switches,
        "modalities": modalities,
        "speech_encoder_source": str(tiny_encoders[0]) if speech else MISSING,
        "text_encoder_source": str(tiny_encoders[1]) if text else MISSING,
    }
    hparams = load_objects(plan_run(YAML, {**overrides, "skip_prep": True}, IEMOCAP))
    model = hparams["model"]
    assert (hparams["speech_encoder"] is not None, hparams["text_encoder"] is not None) == (speech, text)
    assert (model.uses_speech, model.uses_text) == (speech, text)
    assert model.speech_encoder is hparams["speech_encoder"]  # built once, shared
    assert model.text_encoder is hparams["text_encoder"]
    if text and hparams["use_aec"]:  # the AEC decoder reads its vocabulary from the text encoder
        assert model.aec_decoder is not None
        text_encoder = hparams["text_encoder"]
        assert model.aec_decoder.vocab_size == text_encoder.vocab_size
        assert model.aec_decoder.embed_dim == text_encoder.embedding_dim
    else:
        assert model.aec_decoder is None


def test_prep_defaults_are_the_yaml_values():
    hp = values()
    parser = iemocap_prepare.build_parser()
    cli = parser.parse_args(["data", "save"])
    assert hp["seed"] == iemocap_prepare.DEFAULT_SEED == cli.seed
    assert hp["validation"] == iemocap_prepare.DEFAULT_VALIDATION == cli.validation
    assert hp["valid_ratio"] == iemocap_prepare.DEFAULT_VALID_RATIO == cli.valid_ratio
    assert hp["expected_utterances"] == iemocap_prepare.DEFAULT_EXPECTED_UTTERANCES
    assert iemocap_prepare.expected_utterances_of(cli) == hp["expected_utterances"]
    assert iemocap_prepare.expected_utterances_of(parser.parse_args(["d", "s", "--subset"])) is None
    defaults = inspect.signature(iemocap_prepare.prepare_iemocap).parameters
    for option, key in (("seed", "seed"), ("validation", "validation"),
                        ("valid_ratio", "valid_ratio"), ("expected_utterances", "expected_utterances")):
        assert defaults[option].default == hp[key], option


def test_iemocap_selects_on_ua_with_the_plain_emotion_loss():
    hp = values()
    assert hp["selection_metric"] == "UA" and hp["class_weights"] is None


def meld_overrides(**extra):
    """The overrides of a MELD run (``hparams/meld.yaml`` is applied by :func:`values`)."""
    return {"data_folder": "/m", **extra}


def test_meld_overrides_give_the_official_split_manifests():
    overrides = meld_overrides(hypotheses_file=None)
    hp = values(overrides, MELD)
    assert hp["output_folder"] == "results/m4ser_meld/seed1986"
    assert (hp["num_emotions"], hp["lr"], hp["lr_text_encoder"], hp["batch_size"]) == (7, 1e-4, 1e-4, 16)
    assert hp["d_model"] == 768 and hp["use_gan"] is True  # the model section is m4ser.yaml's
    prepared = hp["prepare_folder"]
    assert Path(prepared).parent == Path("results/prepared")
    assert hp["valid_annotation"] == f"{prepared}/valid.json"
    other = values(meld_overrides(hypotheses_file=None, data_folder="/other"), MELD)["prepare_folder"]
    assert other != prepared  # another corpus folder never shares manifests
