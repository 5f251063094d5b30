"""The corpus-agnostic data pipelines over the shared manifest schema."""

import pytest
import torch

from m4ser_lobes.dataio import dataio_prep
from m4ser_lobes.mini_corpus import corpus_words
from m4ser_lobes.testing import save_wordpiece_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return save_wordpiece_tokenizer(tmp_path_factory.mktemp("tok"), corpus_words())


def items(manifests, tokenizer, tmp_path, **kwargs):
    datasets, encoder = dataio_prep(
        {"train": str(manifests / "fold1" / "train.json")}, tokenizer,
        str(tmp_path / "label_encoder.txt"), **kwargs,
    )
    return [datasets["train"][i] for i in range(len(datasets["train"]))], encoder


def test_items_follow_the_manifest(mini_iemocap_manifests, tokenizer, tmp_path):
    data, encoder = items(mini_iemocap_manifests, tokenizer, tmp_path)
    assert len(encoder) == 4
    assert all(x["sig"].dim() == 1 and x["sig"].numel() > 0 for x in data[:5])
    assert all(len(x["input_ids"]) == len(x["aed_labels"]) for x in data)
    assert any(x["aec_targets"] for x in data)  # the generated ASR errors give CHANGE targets
    changes = [(x["aed_labels"] == 2).sum().item() for x in data]
    assert changes == [len(x["aec_targets"]) for x in data]


def test_without_corrections_only_the_text_is_encoded(mini_iemocap_manifests, tokenizer, tmp_path):
    full, _ = items(mini_iemocap_manifests, tokenizer, tmp_path)
    plain, _ = items(mini_iemocap_manifests, tokenizer, tmp_path, with_corrections=False)
    for a, b in zip(full, plain):
        assert torch.equal(a["input_ids"], b["input_ids"])
        assert (b["aed_labels"] == -100).all() and b["aec_targets"] == {}


def test_full_correction_mode_hosts_the_reference_on_cls(mini_iemocap_manifests, tokenizer, tmp_path):
    data, _ = items(mini_iemocap_manifests, tokenizer, tmp_path, correction_mode="full")
    assert all(set(x["aec_targets"]) == {0} for x in data)
