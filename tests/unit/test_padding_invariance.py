"""Padding never changes a prediction: every SSL family, batched == alone (issue 8 §1).

A batch of utterances of very different lengths (0.3 s, 1.0 s, 2.5 s) goes through
``SpeechEncoder``; each utterance's valid frames must equal the same utterance encoded alone to
1e-5, for group-norm checkpoints (HuBERT / wav2vec2 base, whose first CNN layer normalises over
the whole input) as well as layer-norm ones, in eval and training mode (the exported model's
``M4SERClassifier.classify_batch``: ``tests/integration/test_inference.py``).
"""

import pytest
import torch

from m4ser_lobes.encoders import SpeechEncoder
from m4ser_lobes.testing.models import save_tiny_speech_encoder

RATE = 16000
SECONDS = (0.3, 1.0, 2.5)
# group norm: hubert, wav2vec2; layer norm + stable-layer-norm encoder: *-layer; wavlm: layer norm
# with relative position bias.
KINDS = ["hubert", "wav2vec2", "wav2vec2-layer", "hubert-layer", "wavlm"]
GROUP_NORM = {"hubert", "wav2vec2"}
DROPOUTS = (
    "hidden_dropout",
    "attention_dropout",
    "activation_dropout",
    "feat_proj_dropout",
    "final_dropout",
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """One tiny random model per family, saved twice: as built, and with every dropout at 0."""
    from transformers import AutoConfig

    root = tmp_path_factory.mktemp("padding_invariance")
    for kind in KINDS:
        save_tiny_speech_encoder(root / kind, kind=kind)
        folder = save_tiny_speech_encoder(root / f"{kind}-nodrop", kind=kind)
        config = AutoConfig.from_pretrained(str(folder))
        for name in DROPOUTS:
            setattr(config, name, 0.0)
        config.save_pretrained(str(folder))
    return root


def utterances(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(int(s * RATE), generator=generator) for s in SECONDS]


def pad_batch(wavs, width=None, tail=None):
    """Right-pad [L_i] waveforms to [B, width] (zeros, or ``tail`` noise); relative lengths."""
    width = width or max(len(w) for w in wavs)
    batch = torch.zeros(len(wavs), width) if tail is None else tail * torch.randn(len(wavs), width)
    for row, wav in enumerate(wavs):
        batch[row, : len(wav)] = wav
    return batch, torch.tensor([len(w) / width for w in wavs])


def assert_alone_equals_batched(encoder, wavs, states, pad_mask):
    expected = encoder.model._get_feat_extract_output_lengths(torch.tensor([len(w) for w in wavs]))
    assert (~pad_mask).sum(dim=1).tolist() == expected.tolist()
    assert states.shape[1] == int(expected.max())
    for row, wav in enumerate(wavs):
        alone, alone_mask = encoder(wav.unsqueeze(0), torch.ones(1))
        assert not alone_mask.any()
        n = int(expected[row])
        torch.testing.assert_close(states[row, :n], alone[0], atol=1e-5, rtol=0)
    assert not states[pad_mask].any(), "padded frames must be zero"


@pytest.mark.parametrize("kind", KINDS)
def test_alone_equals_batched(tiny_dir, kind):
    encoder = SpeechEncoder(str(tiny_dir / kind), output_dim=16).eval()
    wavs = utterances()
    with torch.no_grad():
        states, pad_mask = encoder(*pad_batch(wavs))
        assert_alone_equals_batched(encoder, wavs, states, pad_mask)


@pytest.mark.parametrize("kind", KINDS)
def test_the_padding_is_never_read(tiny_dir, kind):
    """Loud noise in the padded tail, or ten times more padding, changes no valid frame."""
    encoder = SpeechEncoder(str(tiny_dir / kind)).eval()
    wavs = utterances(seed=1)
    with torch.no_grad():
        clean, mask = encoder(*pad_batch(wavs))
        noisy, noisy_mask = encoder(*pad_batch(wavs, tail=100.0))
        long, long_mask = encoder(*pad_batch(wavs, width=10 * len(wavs[-1])))
    assert torch.equal(mask, noisy_mask) and torch.equal(mask, long_mask[:, : mask.shape[1]])
    assert long.shape[1] == mask.shape[1], "frames follow the longest utterance, not the padding"
    valid = ~mask.unsqueeze(-1)
    torch.testing.assert_close(noisy * valid, clean * valid, atol=1e-5, rtol=0)
    torch.testing.assert_close(long * valid, clean * valid, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", sorted(GROUP_NORM))
def test_group_norm_models_see_the_padding_without_the_fix(tiny_dir, kind):
    """The check above can fail: HF's own forward on the padded batch moves the short utterance."""
    encoder = SpeechEncoder(str(tiny_dir / kind)).eval()
    wavs = utterances()
    batch, rel = pad_batch(wavs)
    with torch.no_grad():
        lengths = (rel * batch.shape[1]).round().long()
        pad = torch.arange(batch.shape[1]) >= lengths.unsqueeze(1)
        normed = encoder._normalize(batch, pad, lengths).masked_fill(pad, 0.0)
        hf = encoder.model(normed).last_hidden_state  # group norm: no attention mask (HF docs)
        alone, _ = encoder(wavs[0].unsqueeze(0), torch.ones(1))
    n = alone.shape[1]
    assert (hf[0, :n] - alone[0]).abs().max() > 1e-2


@pytest.mark.parametrize("kind", KINDS)
def test_the_frame_mask_matters(tiny_dir, kind):
    """Without the frame mask the transformer would attend to padded frames."""
    encoder = SpeechEncoder(str(tiny_dir / kind)).eval()
    wavs = utterances()
    batch, rel = pad_batch(wavs)
    with torch.no_grad():
        states, pad_mask = encoder(batch, rel)
        lengths = (rel * batch.shape[1]).round().long()
        hidden = encoder.model.feature_projection(encoder._cnn_features(batch, lengths))
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        unmasked = encoder.model.encoder(hidden).last_hidden_state
    n = int((~pad_mask[0]).sum())
    assert (unmasked[0, :n] - states[0, :n]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("freeze_feature_extractor", [True, False])
def test_training_mode_is_exact_and_trains(tiny_dir, kind, freeze_feature_extractor):
    """Dropout off: the training forward is exact too, and gradients reach the right parts."""
    torch.manual_seed(0)
    encoder = SpeechEncoder(
        str(tiny_dir / f"{kind}-nodrop"),
        output_dim=16,
        freeze_feature_extractor=freeze_feature_extractor,
    ).train()
    assert encoder.model.training
    wavs = utterances(seed=2)
    states, pad_mask = encoder(*pad_batch(wavs))
    with torch.no_grad():
        assert_alone_equals_batched(encoder, wavs, states, pad_mask)
    (states * torch.randn_like(states)).sum().backward()
    for name, param in encoder.model.encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert encoder.model.feature_projection.projection.weight.grad.abs().sum() > 0
    cnn = list(encoder.model.feature_extractor.parameters())
    if freeze_feature_extractor:
        assert all(p.grad is None for p in cnn)
    else:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cnn)


def test_a_frozen_encoder_builds_no_graph(tiny_dir):
    encoder = SpeechEncoder(str(tiny_dir / "hubert"), freeze=True).train()
    states, _ = encoder(*pad_batch(utterances()))
    assert not states.requires_grad


def test_too_short_utterances_get_one_frame(tiny_dir):
    """Shorter than the CNN's receptive field: zero-padded to it, alone and batched alike."""
    encoder = SpeechEncoder(str(tiny_dir / "hubert")).eval()
    shortest = encoder.min_samples
    assert encoder.frame_lengths(torch.tensor([shortest - 1, shortest])).tolist() == [0, 1]
    wavs = [torch.randn(100), torch.randn(RATE)]
    with torch.no_grad():
        states, pad_mask = encoder(*pad_batch(wavs))
        alone, alone_mask = encoder(wavs[0].unsqueeze(0), torch.ones(1))
    assert (~pad_mask).sum(dim=1)[0] == 1 and alone.shape[1] == 1 and not alone_mask.any()
    torch.testing.assert_close(states[0, :1], alone[0], atol=1e-5, rtol=0)
