"""``keep_punctuation`` in the data pipeline: the encoder input keeps Whisper's "?" and "!",
AED labels ignore them, AEC targets (the normalised reference) are unchanged."""

import json

import numpy as np
import pytest
import soundfile as sf

from m4ser_lobes.data.dataio import dataio_prep
from m4ser_lobes.testing.models import save_wordpiece_tokenizer

K, D, C, X = 0, 1, 2, -100


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return save_wordpiece_tokenizer(tmp_path_factory.mktemp("tok"),
                                    ["you", "did", "what", "no", "way", "?", "!", ","])


@pytest.fixture
def manifests(tmp_path):
    """Two utterances with Whisper-style punctuated hypotheses, in a train and a test manifest."""
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, dtype="float32"), 16000)
    entries = {
        "u1": {"wav": str(wav), "duration": 0.5, "emo": "ang",
               "transcript": "You did WHAT?", "hypothesis": " You did what?"},
        "u2": {"wav": str(wav), "duration": 0.5, "emo": "neu",
               "transcript": "No way.", "hypothesis": " No, no way!"},
    }
    paths = {}
    for split in ("train", "test"):
        paths[split] = str(tmp_path / f"{split}.json")
        with open(paths[split], "w", encoding="utf-8") as fout:
            json.dump(entries, fout)
    return paths


def text_items(manifests, tokenizer, tmp_path, **kwargs):
    datasets, _ = dataio_prep(manifests, tokenizer, str(tmp_path / "labels.txt"), **kwargs)
    out = {}
    for split, dataset in datasets.items():
        with dataset.output_keys_as(["id", "input_ids", "aed_labels", "aec_targets"]):
            out[split] = {x["id"]: x for x in (dataset[i] for i in range(len(dataset)))}
    return out


def test_the_switch_keeps_punctuation_in_the_encoder_input_only(manifests, tokenizer, tmp_path):
    kept = text_items(manifests, tokenizer, tmp_path, keep_punctuation=True)
    plain = text_items(manifests, tokenizer, tmp_path)
    for split in ("train", "test"):
        u1, u2 = kept[split]["u1"], kept[split]["u2"]
        assert tokenizer.convert_ids_to_tokens(u1["input_ids"]) == [
            "[CLS]", "you", "did", "what", "?", "[SEP]"]
        assert u1["aed_labels"].tolist() == [K, K, K, K, X, X]
        assert tokenizer.convert_ids_to_tokens(u2["input_ids"]) == [
            "[CLS]", "no", ",", "no", "way", "!", "[SEP]"]
        assert u2["aed_labels"].tolist() == [K, K, X, D, K, X, X]  # earliest match KEEP
        assert tokenizer.convert_ids_to_tokens(plain[split]["u1"]["input_ids"]) == [
            "[CLS]", "you", "did", "what", "[SEP]"]
        assert plain[split]["u2"]["aed_labels"].tolist() == [K, K, D, K, X]
        for utt in ("u1", "u2"):
            assert kept[split][utt]["aec_targets"] == plain[split][utt]["aec_targets"]


def test_without_corrections_the_switch_still_decides_the_input(manifests, tokenizer, tmp_path):
    kept = text_items(manifests, tokenizer, tmp_path, keep_punctuation=True,
                      with_corrections=False)
    u1 = kept["train"]["u1"]
    assert tokenizer.convert_ids_to_tokens(u1["input_ids"])[-2:] == ["?", "[SEP]"]
    assert (u1["aed_labels"] == X).all() and u1["aec_targets"] == {}


def test_full_correction_targets_stay_the_normalised_reference(manifests, tokenizer, tmp_path):
    kept = text_items(manifests, tokenizer, tmp_path, keep_punctuation=True,
                      correction_mode="full")
    target = kept["train"]["u1"]["aec_targets"][0]
    assert tokenizer.convert_ids_to_tokens(target) == ["you", "did", "what"]
