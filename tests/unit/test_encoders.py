"""Speech and text encoders loaded from tiny random HF models saved on disk (the hub-id path)."""

import shutil

import pytest
import torch

from m4ser_lobes.encoders import SpeechEncoder, TextEncoder
from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

SPEECH_KINDS = ("hubert", "wavlm", "wav2vec2", "wav2vec2-layer")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_encoders")
    for kind in SPEECH_KINDS:
        save_tiny_speech_encoder(root / kind, kind=kind)
    for kind in ("bert", "roberta"):
        save_tiny_text_encoder(root / kind, words=["happy", "angry"], kind=kind)
    return root


@pytest.mark.parametrize("kind", SPEECH_KINDS)
@pytest.mark.parametrize("output_dim", [None, 16])
def test_speech_encoder_frames_and_mask(tiny_dir, kind, output_dim):
    encoder = SpeechEncoder(str(tiny_dir / kind), output_dim=output_dim).eval()
    wavs = torch.randn(3, 16000)
    rel = torch.tensor([1.0, 0.5, 0.25])
    states, pad_mask = encoder(wavs, rel)
    expected = encoder.model._get_feat_extract_output_lengths(torch.tensor([16000, 8000, 4000]))
    assert states.shape == (3, int(expected[0]), output_dim or 32)
    assert (~pad_mask).sum(dim=1).tolist() == expected.tolist()
    # batched == alone for every family: tests/unit/test_padding_invariance.py


def test_freezing(tiny_dir):
    frozen = SpeechEncoder(str(tiny_dir / "hubert"), freeze=True)
    frozen.train()
    assert not frozen.model.training  # kept in eval mode when the Brain calls train()
    assert not any(p.requires_grad for p in frozen.model.parameters())
    tuned = SpeechEncoder(str(tiny_dir / "hubert"), freeze_feature_extractor=True)
    assert not any(p.requires_grad for p in tuned.model.feature_extractor.parameters())
    assert all(p.requires_grad for p in tuned.model.encoder.parameters())
    assert not tuned.model.masked_spec_embed.requires_grad


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_text_encoder_alone_equals_batched(tiny_dir, kind):
    encoder = TextEncoder(str(tiny_dir / kind), output_dim=16).eval()
    ids, pad_mask = encoder.tokenize(["happy angry happy", "angry"])
    states = encoder(ids, pad_mask)
    alone_ids, alone_mask = encoder.tokenize(["angry"])
    alone = encoder(alone_ids, alone_mask)
    n = alone_ids.shape[1]
    torch.testing.assert_close(states[1, :n], alone[0], atol=1e-5, rtol=1e-5)
    assert encoder.vocab_size == len(encoder.tokenizer)
    assert encoder.embed_tokens(ids).shape == (*ids.shape, encoder.embedding_dim)
    bos, eos, pad = encoder.special_ids()
    assert ids[0, 0] == bos and ids[1, int((~pad_mask[1]).sum()) - 1] == eos


def test_text_mask_matters(tiny_dir):
    encoder = TextEncoder(str(tiny_dir / "bert")).eval()
    ids, pad_mask = encoder.tokenize(["happy angry happy", "angry"])
    masked = encoder(ids, pad_mask)
    unmasked = encoder(ids, torch.zeros_like(pad_mask))
    assert not torch.allclose(masked[1, :3], unmasked[1, :3], atol=1e-4)


def test_bad_inputs(tiny_dir):
    encoder = SpeechEncoder(str(tiny_dir / "hubert"))
    with pytest.raises(ValueError, match="mono"):
        encoder(torch.randn(2, 2, 100), torch.ones(2))
    text = TextEncoder(str(tiny_dir / "bert"))
    with pytest.raises(ValueError, match="differ"):
        text(torch.ones(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool))


def test_an_unloadable_source_names_the_yaml_key(tmp_path):
    for missing in (tmp_path / "no-such-folder", tmp_path):  # missing; exists but holds no model
        with pytest.raises(OSError, match=r"speech_encoder_source.*save_pretrained"):
            SpeechEncoder(str(missing))
        with pytest.raises(OSError, match=r"text_encoder_source.*save_pretrained"):
            TextEncoder(str(missing))
    with pytest.raises(OSError, match="^pretrained_path: "):
        SpeechEncoder(str(tmp_path / "no-such-folder"), config_key="pretrained_path")


def test_a_ctc_adapter_is_refused(tiny_dir, tmp_path):
    from transformers import AutoConfig

    shutil.copytree(tiny_dir / "wav2vec2", tmp_path / "adapter")
    config = AutoConfig.from_pretrained(str(tmp_path / "adapter"))
    config.add_adapter = True
    config.save_pretrained(str(tmp_path / "adapter"))
    with pytest.raises(ValueError, match="speech_encoder_source.*add_adapter"):
        SpeechEncoder(str(tmp_path / "adapter"))


def test_an_unverified_model_type_is_refused(tiny_dir, tmp_path):
    """data2vec-audio stacks positional convolutions, which padding would leak through."""
    import json

    shutil.copytree(tiny_dir / "wav2vec2", tmp_path / "data2vec")
    config_file = tmp_path / "data2vec" / "config.json"
    config_file.write_text(
        json.dumps({**json.loads(config_file.read_text()), "model_type": "data2vec-audio"})
    )
    with pytest.raises(ValueError, match="speech_encoder_source.*'data2vec-audio'.*hubert"):
        SpeechEncoder(str(tmp_path / "data2vec"))
