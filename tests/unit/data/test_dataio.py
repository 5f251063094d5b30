"""The corpus-agnostic data pipelines over the shared manifest schema."""

import pytest
import torch

from m4ser_lobes.data.dataio import dataio_prep
from m4ser_lobes.testing.mini_iemocap import corpus_words
from m4ser_lobes.testing.models import save_wordpiece_tokenizer


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


# ------------------------------------------------------------------ audio crop: training only
SECONDS, CROP = 3.0, 1.0


@pytest.fixture
def long_manifests(tmp_path):
    """train/valid/test manifests of one 3 s utterance whose samples are all distinct."""
    import json

    import numpy as np
    import soundfile as sf

    wav = tmp_path / "long.wav"
    n = int(SECONDS * 16000)
    sf.write(wav, np.linspace(-0.9, 0.9, n, dtype="float32"), 16000, subtype="FLOAT")
    entry = {"wav": str(wav), "duration": SECONDS, "emo": "neu",
             "transcript": "i know", "hypothesis": "i know"}
    manifests = {}
    for split in ("train", "valid", "test"):
        manifests[split] = str(tmp_path / f"{split}.json")
        with open(manifests[split], "w", encoding="utf-8") as fout:
            json.dump({"utt": entry}, fout)
    return manifests, wav


def crop_start(window, full):
    """Offset of ``window`` in ``full`` (asserting that it is a contiguous slice)."""
    start = int(torch.argmin((full - window[0]).abs()))
    assert torch.equal(full[start : start + len(window)], window)
    return start


def test_valid_and_test_read_the_whole_utterance_train_a_random_crop(
    long_manifests, tokenizer, tmp_path
):
    from m4ser_lobes.data.audio import load_audio

    manifests, wav = long_manifests
    datasets, _ = dataio_prep(manifests, tokenizer, str(tmp_path / "labels.txt"),
                              max_audio_seconds=CROP)
    full = load_audio(wav)
    assert len(full) == SECONDS * 16000
    for split in ("valid", "test"):
        assert torch.equal(datasets[split][0]["sig"], full), split

    starts = {}
    for seed in range(8):
        torch.manual_seed(seed)
        window = datasets["train"][0]["sig"]
        assert len(window) == CROP * 16000
        starts[seed] = crop_start(window, full)
    assert len(set(starts.values())) > 1 and set(starts.values()) != {0}  # not always the prefix
    assert all(0 <= s <= len(full) - CROP * 16000 for s in starts.values())
    torch.manual_seed(3)  # reproducible through torch's RNG (seeded by SpeechBrain)
    assert crop_start(datasets["train"][0]["sig"], full) == starts[3]


def test_no_crop_and_bad_crop(long_manifests, tokenizer, tmp_path):
    manifests, _ = long_manifests
    datasets, _ = dataio_prep(manifests, tokenizer, str(tmp_path / "labels.txt"))
    assert len(datasets["train"][0]["sig"]) == SECONDS * 16000
    with pytest.raises(ValueError, match="max_audio_seconds"):
        dataio_prep(manifests, tokenizer, str(tmp_path / "labels.txt"), max_audio_seconds=0)
    with pytest.raises(ValueError, match="'train' manifest"):
        dataio_prep({"test": manifests["test"]}, tokenizer, str(tmp_path / "labels.txt"))


# ------------------------------------------------- text items: computed once per utterance
class _CountingAlign:
    """``align_transcripts`` that appends the utterance's texts to a file, from any process."""

    def __init__(self, log):
        from m4ser_lobes.text.alignment import align_transcripts

        self.log, self.align = log, align_transcripts

    def __call__(self, hyp, ref, *args, **kwargs):
        with open(self.log, "a", encoding="utf-8") as fout:
            fout.write(f"{hyp!r}\n")
        return self.align(hyp, ref, *args, **kwargs)


def test_text_items_are_computed_once_not_every_epoch(
    mini_iemocap_manifests, tokenizer, tmp_path, monkeypatch
):
    """Two epochs through a loader with 2 worker processes align no utterance again."""
    import speechbrain as sb

    import m4ser_lobes.data.dataio as dataio
    from m4ser_lobes.data.dataio import make_text_pipeline

    log = tmp_path / "aligned.txt"
    monkeypatch.setattr(dataio, "align_transcripts", _CountingAlign(log))
    datasets, _ = dataio_prep({"train": str(mini_iemocap_manifests / "fold1" / "train.json")},
                              tokenizer, str(tmp_path / "labels.txt"), max_tokens=128)
    train = datasets["train"]
    assert len(log.read_text().splitlines()) == len(train)  # once each, at creation
    loader = sb.dataio.dataloader.make_dataloader(train, batch_size=4, num_workers=2)
    for _ in range(2):
        batches = list(loader)
    assert len(log.read_text().splitlines()) == len(train)
    assert sum(len(b.id) for b in batches) == len(train)

    # The memo gives what a fresh computation gives.
    fresh = make_text_pipeline(tokenizer, max_tokens=128)
    for index in range(len(train)):
        item = train[index]
        entry = train.data[item["id"]]
        ids, labels, targets = fresh.func(item["id"], entry["hypothesis"], entry["transcript"])
        assert torch.equal(item["input_ids"], ids) and torch.equal(item["aed_labels"], labels)
        assert item["aec_targets"] == targets
    item["aec_targets"][99] = [1]  # a consumer editing its copy leaves the memo intact
    assert 99 not in train[len(train) - 1]["aec_targets"]


def test_a_missing_hypothesis_fails_when_the_datasets_are_built(long_manifests, tokenizer,
                                                                 tmp_path):
    import json

    manifests, _ = long_manifests
    with open(manifests["test"], encoding="utf-8") as fin:
        entries = json.load(fin)
    entries["utt"]["hypothesis"] = None
    with open(manifests["test"], "w", encoding="utf-8") as fout:
        json.dump(entries, fout)
    with pytest.raises(ValueError, match="utterance utt has no ASR hypothesis"):
        dataio_prep(manifests, tokenizer, str(tmp_path / "labels.txt"))
