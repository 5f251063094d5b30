"""Speech and text encoders loaded from tiny random HF models saved on disk (the hub-id path)."""

import pytest
import torch

from m4ser_lobes.encoders import SpeechEncoder, TextEncoder
from m4ser_lobes.testing import save_tiny_speech_encoder, save_tiny_text_encoder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_encoders")
    for kind in ("hubert", "wavlm", "wav2vec2"):
        save_tiny_speech_encoder(root / kind, kind=kind)
    for kind in ("bert", "roberta"):
        save_tiny_text_encoder(root / kind, words=["happy", "angry"], kind=kind)
    return root


@pytest.mark.parametrize("kind", ["hubert", "wavlm", "wav2vec2"])
@pytest.mark.parametrize("output_dim", [None, 16])
def test_speech_encoder_frames_and_mask(tiny_dir, kind, output_dim):
    encoder = SpeechEncoder(str(tiny_dir / kind), output_dim=output_dim).eval()
    wavs = torch.randn(3, 16000)
    rel = torch.tensor([1.0, 0.5, 0.25])
    states, pad_mask = encoder(wavs, rel)
    expected = encoder.model._get_feat_extract_output_lengths(torch.tensor([16000, 8000, 4000]))
    assert states.shape == (3, int(expected[0]), output_dim or 32)
    assert (~pad_mask).sum(dim=1).tolist() == expected.tolist()
    assert encoder.use_attention_mask == (kind == "wavlm")


def test_layer_norm_encoder_alone_equals_batched(tiny_dir):
    """WavLM gets the attention mask: padding does not change a shorter utterance."""
    encoder = SpeechEncoder(str(tiny_dir / "wavlm")).eval()
    wav = torch.randn(8000)
    batch = torch.zeros(2, 16000)
    batch[0] = torch.randn(16000)
    batch[1, :8000] = wav
    states, pad_mask = encoder(batch, torch.tensor([1.0, 0.5]))
    alone, alone_mask = encoder(wav.unsqueeze(0), torch.tensor([1.0]))
    n = int((~alone_mask).sum())
    assert int((~pad_mask[1]).sum()) == n
    torch.testing.assert_close(states[1, :n], alone[0, :n], atol=1e-4, rtol=1e-4)


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
