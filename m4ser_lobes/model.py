"""The composed M4SER model: encoders, fusion, heads and the selective AEC decoder, injected.

The model receives already-built lobes (composition, not configuration): HyperPyYAML builds each
one with ``!new:`` and hands them to :class:`M4SER`. The modality discriminator is *not* part of
it: it has its own optimiser and its own DDP wrapper in the Brain (docs/design.md §5).

Data flow (docs/design.md §1)::

    wav ─► speech_encoder ─► H_S ┐
                                  ├─► fusion ─► H_ap ─► emotion_head ─► logits      (inference)
    ids ─► text_encoder  ─► H_T ┘
                           H_T ─► aed_head ─► K/D/C logits                          (training)
                           H_T ─► aec_decoder(CHANGE hosts) ─► vocabulary logits   (training)

Shape legend: B batch, L samples, T_s speech frames, T_t tokens, D width, C classes,
K CHANGE tokens in the batch, V vocabulary. Masks: True = padding.
"""

from typing import NamedTuple, Optional

import torch
from torch import nn

from m4ser_lobes.aec import gather_hosts
from m4ser_lobes.text.tags import AEDTag
from m4ser_lobes.text.targets import DEFAULT_AEC_MAX_LEN


class M4SEROutput(NamedTuple):
    """Named outputs of :class:`M4SER`; what an ablation does not compute is None."""

    logits: torch.Tensor  # [B, C] emotion logits (Eq. 18)
    pooled: torch.Tensor  # H_ap [B, D_out] (Eq. 17), the LCL features
    speech_specific: Optional[torch.Tensor] = None  # H_S^spe [B, T_s, D]
    text_specific: Optional[torch.Tensor] = None  # H_T^spe [B, T_s, D]
    invariant: Optional[torch.Tensor] = None  # H_inv [B, T_s, D]
    speech_pad_mask: Optional[torch.Tensor] = None  # [B, T_s]
    text_states: Optional[torch.Tensor] = None  # H_T [B, T_t, D]
    text_pad_mask: Optional[torch.Tensor] = None  # [B, T_t]
    aed_logits: Optional[torch.Tensor] = None  # [B, T_t, 3] (Eq. 2)
    aec_logits: Optional[torch.Tensor] = None  # [K, L, V] (Eq. 6)


class M4SER(nn.Module):
    """M4SER with injected lobes.

    Arguments
    ---------
    fusion : m4ser_lobes.fusion.MultimodalFusion
        The MF module (decides which modalities are used).
    emotion_head : nn.Module
        Dropout + Linear on H_ap (``EmotionHead``).
    speech_encoder : m4ser_lobes.encoders.SpeechEncoder, optional
        Needed unless ``fusion.modalities == "text"``.
    text_encoder : m4ser_lobes.encoders.TextEncoder, optional
        Needed unless ``fusion.modalities == "speech"``, and by AED/AEC.
    aed_head : nn.Module, optional
        ASR error detection tagger (None = Table IV C(1)/C(3)).
    aec_decoder : m4ser_lobes.aec.SelectiveAECDecoder, optional
        ASR error correction decoder (None = Table IV C(2)/C(3)).

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder
    >>> from m4ser_lobes.encoders import SpeechEncoder, TextEncoder
    >>> from m4ser_lobes.fusion import MultimodalFusion
    >>> from m4ser_lobes.heads import EmotionHead, AEDHead
    >>> tmp = getfixture("tmp_path")
    >>> speech = SpeechEncoder(str(save_tiny_speech_encoder(tmp / "s")), output_dim=16)
    >>> text = TextEncoder(str(save_tiny_text_encoder(tmp / "t")), output_dim=16)
    >>> model = M4SER(MultimodalFusion(16, 4), EmotionHead(16, 4), speech, text,
    ...               aed_head=AEDHead(16)).eval()
    >>> ids, text_pad = text.tokenize(["you know", "no"])
    >>> out = model(torch.randn(2, 16000), torch.tensor([1.0, 0.7]), ids, text_pad)
    >>> out.logits.shape, out.pooled.shape, out.invariant.shape, out.aed_logits.shape
    (torch.Size([2, 4]), torch.Size([2, 16]), torch.Size([2, 49, 16]), torch.Size([2, 4, 3]))
    """

    def __init__(
        self,
        fusion,
        emotion_head,
        speech_encoder=None,
        text_encoder=None,
        aed_head=None,
        aec_decoder=None,
    ):
        super().__init__()
        if fusion.needs_speech and speech_encoder is None:
            raise ValueError(f"fusion uses speech (modalities={fusion.modalities!r}): give a speech_encoder")
        needs_text = fusion.needs_text or aed_head is not None or aec_decoder is not None
        if needs_text and text_encoder is None:
            raise ValueError("fusion, AED or AEC use text: give a text_encoder")
        self.fusion = fusion
        self.emotion_head = emotion_head
        # Unused encoders are not kept, so they never hold unused (DDP) parameters.
        self.speech_encoder = speech_encoder if fusion.needs_speech else None
        self.text_encoder = text_encoder if needs_text else None
        self.aed_head = aed_head
        self.aec_decoder = aec_decoder

    @property
    def uses_speech(self):
        return self.speech_encoder is not None

    @property
    def uses_text(self):
        return self.text_encoder is not None

    def text_pool_mask(self, input_ids, text_pad_mask):
        """Pad mask that also excludes [CLS]/[SEP] (for pooling H_T), [B, T_t]."""
        bos, eos, _ = self.text_encoder.special_ids()
        return text_pad_mask | (input_ids == bos) | (input_ids == eos)

    def encode(self, wavs, wav_lens, input_ids, text_pad_mask):
        """Run the encoders that the configuration uses; returns (H_S, speech mask, H_T)."""
        speech_states = speech_pad_mask = text_states = None
        if self.uses_speech:
            speech_states, speech_pad_mask = self.speech_encoder(wavs, wav_lens)
        if self.uses_text:
            text_states = self.text_encoder(input_ids, text_pad_mask)
        return speech_states, speech_pad_mask, text_states

    def forward(self, wavs, wav_lens, input_ids=None, text_pad_mask=None, correction=None):
        """Classify a batch; also run the training heads the configuration has.

        Arguments
        ---------
        wavs : torch.Tensor
            [B, L] waveforms (ignored for text-only).
        wav_lens : torch.Tensor
            [B] relative lengths.
        input_ids : torch.Tensor
            [B, T_t] token ids of the (normalised) ASR hypothesis with [CLS]/[SEP].
        text_pad_mask : torch.Tensor
            [B, T_t] True = padding.
        correction : m4ser_lobes.text.targets.CorrectionBatch, optional
            The K CHANGE hosts and their teacher-forced decoder inputs; AEC runs when given.

        Returns
        -------
        M4SEROutput
        """
        speech_states, speech_pad_mask, text_states = self.encode(
            wavs, wav_lens, input_ids, text_pad_mask
        )
        pool_mask = self.text_pool_mask(input_ids, text_pad_mask) if self.uses_text else None
        fused = self.fusion(speech_states, speech_pad_mask, text_states, text_pad_mask, pool_mask)
        aed_logits = self.aed_head(text_states) if self.aed_head is not None else None
        aec_logits = None
        if self.aec_decoder is not None and correction is not None:
            hosts, memory, memory_pad_mask = gather_hosts(
                text_states, text_pad_mask, correction.batch_index, correction.positions
            )
            aec_logits = self.aec_decoder(
                correction.decoder_input,
                correction.decoder_pad_mask,
                hosts,
                memory,
                memory_pad_mask,
                self.text_encoder.embed_tokens,
            )
        return M4SEROutput(
            logits=self.emotion_head(fused.pooled),
            pooled=fused.pooled,
            speech_specific=fused.speech_specific,
            text_specific=fused.text_specific,
            invariant=fused.invariant,
            speech_pad_mask=fused.speech_pad_mask,
            text_states=text_states,
            text_pad_mask=text_pad_mask,
            aed_logits=aed_logits,
            aec_logits=aec_logits,
        )

    @torch.no_grad()
    def correct_transcripts(self, input_ids, text_pad_mask, max_len=DEFAULT_AEC_MAX_LEN):
        """Detect and correct ASR errors (docs/design.md §4): predicted labels and decoded spans.

        Special tokens are never corrected: [SEP], padding and any other special id are
        forced to KEEP (padding to DELETE, which emits nothing either), and so is [CLS] — except
        that [CLS] at position 0 may be CHANGE, the host of words the ASR dropped before the first
        one (docs/design.md §4), which inserts its span without touching [CLS] itself.

        Arguments
        ---------
        input_ids : torch.Tensor
            [B, T_t] hypothesis token ids.
        text_pad_mask : torch.Tensor
            [B, T_t] True = padding.
        max_len : int
            Cap on each decoded span.

        Returns
        -------
        labels : torch.Tensor
            [B, T_t] predicted K/D/C labels (0/1/2; padding 1).
        spans : list of dict
            Per utterance, CHANGE position -> decoded token ids.
        """
        if self.aed_head is None or self.aec_decoder is None:
            raise RuntimeError("correction needs a model trained with both AED and AEC")
        text_states = self.text_encoder(input_ids, text_pad_mask)
        labels = self.aed_head(text_states).argmax(dim=-1)  # [B, T_t]
        bos, eos, pad = self.text_encoder.special_ids()
        special = torch.zeros_like(text_pad_mask)
        for token in {bos, eos, pad, *self.text_encoder.tokenizer.all_special_ids} - {None}:
            special |= input_ids == token
        cls_host = torch.zeros_like(special)
        cls_host[:, 0] = (input_ids[:, 0] == bos) & (labels[:, 0] == AEDTag.CHANGE)
        labels = labels.masked_fill(special & ~cls_host, AEDTag.KEEP)
        labels = labels.masked_fill(text_pad_mask, AEDTag.DELETE)  # padding emits nothing
        batch_index, positions = torch.nonzero(labels == AEDTag.CHANGE, as_tuple=True)
        hosts, memory, memory_pad_mask = gather_hosts(
            text_states, text_pad_mask, batch_index, positions
        )
        tokens, lengths = self.aec_decoder.greedy_decode(
            hosts, memory, memory_pad_mask, self.text_encoder.embed_tokens, bos, eos, max_len
        )
        spans = [{} for _ in range(input_ids.shape[0])]
        for k in range(len(batch_index)):
            spans[int(batch_index[k])][int(positions[k])] = tokens[k, : lengths[k]].tolist()
        return labels, spans


def build_if(flag, builder, **kwargs):
    """``builder(**kwargs)`` when ``flag`` is true, else None; nothing is constructed when off.

    This is the one way the YAML switches a part off: it receives the class (``!name:``) and
    builds it only when the configuration uses it (``!new:`` would build it first), so a
    speech-only run never loads a text encoder, ``use_aed=False`` builds no AED head and
    ``use_gan=False`` no discriminator. The Brain then runs what exists (:func:`present`).

    Example
    -------
    >>> build_if(False, torch.nn.Linear, in_features=2, out_features=2) is None
    True
    >>> build_if(True, torch.nn.Linear, in_features=2, out_features=3).out_features
    3
    """
    return builder(**kwargs) if flag else None


def present(**objects):
    """The ``objects`` that exist: a dict without the None values, in the given order.

    What the YAML gives SpeechBrain as ``modules`` and as the checkpointer's ``recoverables``,
    so that a part a switch left unbuilt (:func:`build_if`) is neither trained, wrapped by DDP
    nor checkpointed.

    Example
    -------
    >>> present(model="m", discriminator=None, counter="c")
    {'model': 'm', 'counter': 'c'}
    """
    return {name: obj for name, obj in objects.items() if obj is not None}
