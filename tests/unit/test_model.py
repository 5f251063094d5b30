"""The composed M4SER model: padding invariance end to end, gradients, correction output."""

import pytest
import torch

from m4ser_lobes import losses
from m4ser_lobes.aec import SelectiveAECDecoder
from m4ser_lobes.text.alignment import align_transcripts
from m4ser_lobes.text.targets import batch_correction_targets
from m4ser_lobes.discriminator import ModalityDiscriminator
from m4ser_lobes.encoders import SpeechEncoder, TextEncoder
from m4ser_lobes.fusion import MultimodalFusion
from m4ser_lobes.heads import AEDHead, EmotionHead
from m4ser_lobes.model import M4SER
from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

D, H = 16, 4
WORDS = ["i", "am", "so", "happy", "today", "angry"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_model")
    return (
        save_tiny_speech_encoder(root / "wavlm", kind="wavlm"),
        save_tiny_text_encoder(root / "bert", words=WORDS),
    )


def build(folders, **fusion_kwargs):
    torch.manual_seed(0)
    speech = SpeechEncoder(str(folders[0]), output_dim=D)
    text = TextEncoder(str(folders[1]), output_dim=D)
    fusion = MultimodalFusion(D, H, **fusion_kwargs)
    aec = SelectiveAECDecoder(D, text.vocab_size, text.embedding_dim, nhead=H, dim_feedforward=32)
    return M4SER(fusion, EmotionHead(fusion.output_dim, 4), speech, text, AEDHead(D), aec)


def batch_of(model):
    wavs = torch.zeros(2, 16000)
    wavs[0] = torch.randn(16000)
    wavs[1, :9600] = torch.randn(9600)
    ids, pad = model.text_encoder.tokenize(["i am so happy today", "angry"])
    return wavs, torch.tensor([1.0, 0.6]), ids, pad


@pytest.mark.parametrize("ablation", [{}, {"use_msr": False}, {"use_mir": False},
                                      {"use_msr": False, "use_mir": False}])
def test_alone_equals_batched_end_to_end(folders, ablation):
    model = build(folders, **ablation).eval()
    wavs, lens, ids, pad = batch_of(model)
    batched = model(wavs, lens, ids, pad)
    n = int((~pad[1]).sum())
    alone = model(wavs[1:, :9600], torch.tensor([1.0]), ids[1:, :n], pad[1:, :n])
    torch.testing.assert_close(batched.logits[1:], alone.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.pooled[1:], alone.pooled, atol=1e-5, rtol=1e-5)


def test_the_text_mask_matters_end_to_end(folders):
    model = build(folders).eval()
    wavs, lens, ids, pad = batch_of(model)
    masked = model(wavs, lens, ids, pad).logits
    unmasked = model(wavs, lens, ids, torch.zeros_like(pad)).logits
    assert not torch.allclose(masked[1], unmasked[1], atol=1e-4)


def test_joint_loss_reaches_every_trainable_parameter_and_never_d(folders):
    model = build(folders).train()
    discriminator = ModalityDiscriminator(D, hidden=8)
    wavs, lens, ids, pad = batch_of(model)
    tok = model.text_encoder.tokenizer
    aligned = [align_transcripts(h, r, tok) for h, r in
               [("i am so happy today", "i am not happy today"), ("angry", "so angry")]]
    bos, eos, pad_id = model.text_encoder.special_ids()
    correction = batch_correction_targets([a.targets for a in aligned], bos, eos, pad_id)
    assert correction.num_sequences >= 2
    out = model(wavs, lens, ids, pad, correction)
    labels = torch.full(ids.shape, -100)
    for b, a in enumerate(aligned):
        labels[b, : len(a.labels)] = torch.tensor(a.labels)
    discriminator.requires_grad_(False)  # the model phase: D frozen
    logits = discriminator(torch.cat([out.speech_specific, out.text_specific, out.invariant]))
    _, loss_g = losses.gan_losses(*logits.chunk(3), out.speech_pad_mask)
    discriminator.requires_grad_(True)
    total = losses.joint_loss({
        "er": losses.emotion_loss(out.logits, torch.tensor([0, 1])),
        "aed": losses.aed_loss(out.aed_logits, labels),
        "aec": losses.aec_loss(out.aec_logits, correction.decoder_labels),
        "g": loss_g,
        "lcl": losses.label_contrastive_loss(out.pooled, torch.tensor([1, 1])),
    }, {"alpha": 0.1, "beta": 3.0, "gamma": 0.01, "lam": 0.1})
    total.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    silent = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum()]
    # Token-type and position rows that no input used legitimately get zero gradient.
    silent = [n for n in silent if "embeddings" not in n]
    assert silent == []
    assert all(p.grad is None for p in discriminator.parameters())


def test_modalities_drop_unused_encoders(folders):
    speech_only = build(folders, modalities="speech")
    assert speech_only.text_encoder is not None  # still needed by AED/AEC
    torch.manual_seed(0)
    fusion = MultimodalFusion(D, H, modalities="text")
    text_only = M4SER(fusion, EmotionHead(D, 4), SpeechEncoder(str(folders[0]), output_dim=D),
                      TextEncoder(str(folders[1]), output_dim=D))
    assert text_only.speech_encoder is None
    with pytest.raises(ValueError, match="speech_encoder"):
        M4SER(MultimodalFusion(D, H), EmotionHead(D, 4), None, text_only.text_encoder)


def test_correct_transcripts_returns_labels_and_spans(folders):
    model = build(folders).eval()
    _, _, ids, pad = batch_of(model)
    with torch.no_grad():
        model.aed_head.linear.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))  # force CHANGE
    labels, spans = model.correct_transcripts(ids, pad, max_len=4)
    assert labels.shape == ids.shape
    n = int((~pad[1]).sum())
    # every word and the leading [CLS] (host of dropped leading words) may change; [SEP] not
    assert len(spans) == 2 and set(spans[1]) == set(range(n - 1))
    assert all(len(s) <= 4 for utt in spans for s in utt.values())


@pytest.mark.parametrize("forced", [1, 2])  # DELETE, CHANGE everywhere
def test_correction_never_touches_special_tokens(folders, forced):
    model = build(folders).eval()
    _, _, ids, pad = batch_of(model)
    bias = torch.zeros(3)
    bias[forced] = 50.0
    with torch.no_grad():
        model.aed_head.linear.bias.copy_(bias)
    labels, spans = model.correct_transcripts(ids, pad, max_len=4)
    bos, eos, pad_id = model.text_encoder.special_ids()
    sep = ids == eos
    assert sep.sum() == 2 and (labels[sep] == 0).all()  # [SEP]: KEEP, never corrected
    assert (labels[pad] == 1).all()  # padding: nothing to emit
    assert not any(int(ids[b, p]) in (eos, pad_id) for b, utt in enumerate(spans) for p in utt)
    words = ~(sep | pad | (ids == bos))
    assert (labels[words] == forced).all()  # the words do follow the head
    if forced == 1:  # DELETE is never put on [CLS] either
        assert (labels[:, 0] == 0).all() and spans == [{}, {}]
