"""Speech and text encoders (paper §III-B, Eq. 1), swappable in YAML by their hub id or folder.

Both load through ``transformers.AutoModel.from_pretrained(source)``, so a hub id
(``facebook/hubert-base-ls960``, ``microsoft/wavlm-base-plus``, ``facebook/wav2vec2-base``,
``bert-base-uncased``, ``roberta-base`` ...) and a local folder written by ``save_pretrained``
take the same path. When an encoder's width differs from the model width ``output_dim``
(HuBERT-large 1024, MiniLM 384) a Linear projection maps it to ``output_dim``. A source that
cannot be loaded (a missing folder, a hub id not in the cache while offline) raises an
``OSError`` naming the YAML key (``speech_encoder_source``, ``text_encoder_source``) and the fix.

Shape legend: B batch, L samples, T_s speech frames, C_cnn CNN channels, T_t tokens, D width.
Masks: True = padding.
"""

import os

import torch
from torch import nn

from m4ser_lobes.masks import lengths_to_pad_mask, relative_to_absolute


def _projection(in_dim, out_dim):
    if out_dim is None or out_dim == in_dim:
        return nn.Identity()
    return nn.Linear(in_dim, out_dim)


class _FreezableEncoder(nn.Module):
    """Keeps a frozen pretrained model in eval mode even when the Brain calls ``train()``."""

    def _freeze(self):
        self.model.requires_grad_(False)
        self.model.eval()

    def train(self, mode=True):
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self


#: SSL families whose encoder is exact on a zero-padded frame batch with a frame mask: the
#: transformer zeroes padded frames, its single positional convolution then sees the same zeros
#: as an utterance alone, and attention ignores padded keys.
PADDING_EXACT_MODEL_TYPES = ("hubert", "wav2vec2", "wavlm")


def _from_pretrained(loader, source, config_key, **kwargs):
    """``loader.from_pretrained(source)``; a missing or unreachable source names the YAML key."""

    def unloadable(reason):
        cache = kwargs.get("cache_dir")
        return OSError(
            f"{config_key}: cannot load {source!r} ({reason}). Set `{config_key}` to a local "
            "folder written by `save_pretrained`, or go online once (without HF_HUB_OFFLINE / "
            "TRANSFORMERS_OFFLINE) so that the hub id is downloaded into the Hugging Face cache"
            + (f" ({cache})" if cache else "")
            + "."
        )

    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        raise unloadable("the folder holds no config.json")
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as err:
        raise unloadable(err) from err


def _receptive_field(config):
    """Fewest samples that give one CNN frame (400 for the base checkpoints)."""
    samples = 1
    for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        samples = (samples - 1) * stride + kernel
    return samples


class SpeechEncoder(_FreezableEncoder):
    """A self-supervised speech encoder (HuBERT / WavLM / wav2vec2): H_S = Enc(wav).

    Padding never changes a valid frame, whatever the checkpoint's normalisation, in training,
    evaluation and inference alike: ``forward`` runs the model's parts itself, as the Hugging Face
    ``forward`` chains them, but

    1. normalises each waveform over its own valid samples (when the checkpoint's feature
       extractor says ``do_normalize``);
    2. runs the CNN feature encoder on each utterance's own samples only (utterances of equal
       length share one call), so the group norm of ``feat_extract_norm == "group"`` checkpoints
       (``hubert-base-ls960``, ``wav2vec2-base``) never sees padding; layer-norm CNNs normalise
       each frame alone, so their valid frames never read padding and the batch runs in one call;
    3. projects the features, zero-pads them to the batch's longest frame count and runs the
       transformer encoder with the boolean frame mask (True = valid, what HF's encoders take),
       for group-norm and layer-norm (``do_stable_layer_norm``) checkpoints alike.

    Each utterance therefore gets what the Hugging Face model gives it alone (tested to 1e-5).
    Frame counts follow the encoder's own output-length rule
    (``_get_feat_extract_output_lengths``); an utterance shorter than the CNN's receptive field
    (:attr:`min_samples`) is zero-padded to it, and yields one frame. Supported: the model types of
    ``PADDING_EXACT_MODEL_TYPES``, without a wav2vec2 CTC ``adapter``. SpecAugment is off (the
    ``masked_spec_embed`` is never used and kept out of the optimiser). A HuBERT with
    ``conv_pos_batch_norm`` is exact in eval mode only (its batch norm uses batch statistics in
    training).

    Arguments
    ---------
    source : str
        Hub id or local folder (with ``preprocessor_config.json``).
    output_dim : int, optional
        Model width D; a Linear projection is added when the encoder's width differs.
    freeze : bool
        Freeze the whole encoder (kept in eval mode).
    freeze_feature_extractor : bool
        Freeze the CNN feature encoder (standard when fine-tuning, ``docs/design.md §7``); no
        gradient is computed through it.
    save_path : str, optional
        Hugging Face cache folder.
    layerdrop : float, optional
        Overrides the config's LayerDrop (0 keeps every layer used, which DDP needs without
        ``find_unused_parameters``). ``None`` keeps the checkpoint's value.
    config_key : str
        YAML key named when ``source`` cannot be loaded.

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_tiny_speech_encoder
    >>> folder = save_tiny_speech_encoder(getfixture("tmp_path") / "hubert")
    >>> encoder = SpeechEncoder(str(folder), output_dim=16).eval()
    >>> wavs = torch.randn(2, 16000)
    >>> states, pad_mask = encoder(wavs, torch.tensor([1.0, 0.5]))
    >>> states.shape, pad_mask.sum(dim=1)
    (torch.Size([2, 49, 16]), tensor([ 0, 25]))
    >>> alone, _ = encoder(wavs[1:, :8000], torch.tensor([1.0]))
    >>> torch.allclose(states[1, :24], alone[0], atol=1e-5)
    True
    """

    def __init__(
        self,
        source,
        output_dim=None,
        freeze=False,
        freeze_feature_extractor=True,
        save_path=None,
        layerdrop=0.0,
        config_key="speech_encoder_source",
    ):
        super().__init__()
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        config = _from_pretrained(AutoConfig, source, config_key, cache_dir=save_path)
        if config.model_type not in PADDING_EXACT_MODEL_TYPES:
            raise ValueError(
                f"{config_key}: {source!r} is a {config.model_type!r} model; SpeechEncoder "
                f"supports {', '.join(PADDING_EXACT_MODEL_TYPES)} checkpoints"
            )
        if getattr(config, "add_adapter", False):
            raise ValueError(
                f"{config_key}: {source!r} has a CTC adapter (config.add_adapter=True), which "
                "SpeechEncoder does not run; use the checkpoint's pretrained encoder without it"
            )
        config.apply_spec_augment = False
        if layerdrop is not None:
            config.layerdrop = layerdrop
        self.model = _from_pretrained(
            AutoModel, source, config_key, config=config, cache_dir=save_path
        )
        feature_extractor = _from_pretrained(
            AutoFeatureExtractor, source, config_key, cache_dir=save_path
        )
        self.feature_extractor = feature_extractor  # saved next to the weights by the exporter
        self.normalize_wav = bool(getattr(feature_extractor, "do_normalize", False))
        self.min_samples = _receptive_field(config)
        # The first conv's GroupNorm normalises over time: padding would leak into valid frames.
        # LayerNorm CNNs normalise each frame alone, so a padded batch needs no per-length calls.
        self.cnn_per_length = getattr(config, "feat_extract_norm", "group") == "group"
        self.freeze = freeze
        self.native_dim = config.hidden_size
        # SpecAugment is off, so its embedding is never used: keep it out of the optimiser.
        if getattr(self.model, "masked_spec_embed", None) is not None:
            self.model.masked_spec_embed.requires_grad_(False)
        if freeze:
            self._freeze()
        elif freeze_feature_extractor:
            self.model.feature_extractor._freeze_parameters()
        self.proj = _projection(self.native_dim, output_dim)
        self.output_dim = output_dim or self.native_dim

    def frame_lengths(self, sample_lengths):
        """Number of encoder frames for absolute sample lengths [B]."""
        return self.model._get_feat_extract_output_lengths(sample_lengths).long()

    def forward(self, wavs, wav_lens):
        """Encode a padded batch of waveforms; each utterance is encoded as if it were alone.

        Arguments
        ---------
        wavs : torch.Tensor
            [B, L] 16 kHz waveforms, padded on the right (the padding is never read).
        wav_lens : torch.Tensor
            [B] SpeechBrain relative lengths.

        Returns
        -------
        states : torch.Tensor
            [B, T_s, D] H_S, zero on padded frames; T_s is the longest utterance's frame count.
        pad_mask : torch.Tensor
            [B, T_s] bool, True = padding.
        """
        if wavs.dim() != 2:
            raise ValueError(f"wavs must be [B, L] mono audio, got shape {tuple(wavs.shape)}")
        lengths = relative_to_absolute(wav_lens, wavs.shape[1])
        sample_pad = lengths_to_pad_mask(lengths, wavs.shape[1])
        if self.normalize_wav:
            wavs = self._normalize(wavs, sample_pad, lengths)
        wavs = wavs.masked_fill(sample_pad, 0.0)
        if wavs.shape[1] < self.min_samples:
            wavs = nn.functional.pad(wavs, (0, self.min_samples - wavs.shape[1]))
        lengths = lengths.clamp(min=self.min_samples)  # too short: zero-padded to one frame
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            features = self._cnn_features(wavs, lengths)  # [B, T_s, C_cnn]
            frame_lengths = self.frame_lengths(lengths)
            pad_mask = lengths_to_pad_mask(frame_lengths, features.shape[1])
            hidden = self.model.feature_projection(features)
            if isinstance(hidden, tuple):  # wav2vec2 / WavLM: (projected, normalised features)
                hidden = hidden[0]
            # HF encoders zero the masked frames and turn the mask into an additive one.
            frame_mask = ~pad_mask if bool(pad_mask.any()) else None
            states = self.model.encoder(hidden, attention_mask=frame_mask).last_hidden_state
        states = self.proj(states).masked_fill(pad_mask.unsqueeze(-1), 0.0)
        return states, pad_mask

    def _cnn_features(self, wavs, lengths):
        """CNN features of each utterance's own samples, zero-padded: [B, L] -> [B, T_s, C_cnn].

        Group-norm CNNs run once per distinct length (one call for an unpadded batch); layer-norm
        CNNs, whose valid frames never read padding, run once on the whole batch.
        """
        cnn = self.model.feature_extractor
        trainable = any(p.requires_grad for p in cnn.parameters())
        groups = {}
        for row, length in enumerate(lengths.tolist()):
            groups.setdefault(length, []).append(row)
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            if len(groups) == 1 or not self.cnn_per_length:
                return cnn(wavs[:, : max(groups)]).transpose(1, 2)
            parts = []
            for length, rows in groups.items():
                rows = torch.tensor(rows, device=wavs.device)
                parts.append((rows, cnn(wavs[rows, :length]).transpose(1, 2)))
            longest = max(part.shape[1] for _, part in parts)
            features = parts[0][1].new_zeros(wavs.shape[0], longest, parts[0][1].shape[2])
            for rows, part in parts:
                features[rows, : part.shape[1]] = part
        return features

    @staticmethod
    def _normalize(wavs, pad_mask, lengths):
        """Zero-mean unit-variance over each waveform's valid samples (HF feature extractor)."""
        valid = (~pad_mask).to(wavs.dtype)
        n = lengths.to(wavs.dtype).unsqueeze(1)
        mean = (wavs * valid).sum(dim=1, keepdim=True) / n
        var = (((wavs - mean) * valid) ** 2).sum(dim=1, keepdim=True) / n
        return (wavs - mean) / torch.sqrt(var + 1e-7)


class TextEncoder(_FreezableEncoder):
    """A pretrained text encoder (BERT, RoBERTa, ...) over token ids: H_T = BERT(TE(T)+PE(T)) (Eq. 1).

    Unlike SpeechBrain's ``TextEncoder``, tokenisation happens outside ``forward`` (in the data
    pipeline, through :mod:`m4ser_lobes.text.alignment`), so the AED labels index exactly the ids the
    encoder sees. ``embed_tokens`` exposes the encoder's own input embeddings (TE + PE, positions
    restarting at 0 per sequence), which the selective AEC decoder shares (Eq. 4).

    Arguments
    ---------
    source : str
        Hub id or local folder holding the model and its tokenizer.
    output_dim : int, optional
        Model width D; a Linear projection is added when the encoder's width differs.
    freeze : bool
        Freeze the encoder (kept in eval mode).
    save_path : str, optional
        Hugging Face cache folder.
    config_key : str
        YAML key named when ``source`` cannot be loaded.

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_tiny_text_encoder
    >>> folder = save_tiny_text_encoder(getfixture("tmp_path") / "bert", words=["hello"])
    >>> encoder = TextEncoder(str(folder), output_dim=16).eval()
    >>> ids, pad_mask = encoder.tokenize(["hello world", "hello"])
    >>> ids.shape, pad_mask.sum(dim=1)
    (torch.Size([2, 8]), tensor([0, 5]))
    >>> encoder(ids, pad_mask).shape, encoder.embed_tokens(ids).shape
    (torch.Size([2, 8, 16]), torch.Size([2, 8, 32]))
    """

    def __init__(
        self,
        source,
        output_dim=None,
        freeze=False,
        save_path=None,
        config_key="text_encoder_source",
    ):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = _from_pretrained(AutoTokenizer, source, config_key, cache_dir=save_path)
        try:  # BERT-family: the pooler is never used (and would be an unused DDP parameter)
            self.model = _from_pretrained(
                AutoModel, source, config_key, cache_dir=save_path, add_pooling_layer=False
            )
        except TypeError:
            self.model = _from_pretrained(AutoModel, source, config_key, cache_dir=save_path)
        self.freeze = freeze
        self.native_dim = self.model.config.hidden_size
        if freeze:
            self._freeze()
        self.proj = _projection(self.native_dim, output_dim)
        self.output_dim = output_dim or self.native_dim

    @property
    def vocab_size(self):
        """V: rows of the input embedding table (the AEC decoder's output size)."""
        return self.model.get_input_embeddings().num_embeddings

    @property
    def embedding_dim(self):
        """Width E of :meth:`embed_tokens` (the encoder's native width)."""
        return self.native_dim

    def special_ids(self):
        """Return (bos, eos, pad) ids: [CLS], [SEP], [PAD] (or <s>, </s>, <pad>)."""
        tok = self.tokenizer
        bos = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        eos = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        return bos, eos, tok.pad_token_id

    def tokenize(self, texts):
        """Tokenise already-normalised texts; returns ids [B, T_t] and pad mask [B, T_t]."""
        enc = self.tokenizer(list(texts), padding=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"] == 0

    def forward(self, input_ids, pad_mask):
        """Encode token ids.

        Arguments
        ---------
        input_ids : torch.Tensor
            [B, T_t] token ids with the tokenizer's specials.
        pad_mask : torch.Tensor
            [B, T_t] bool, True = padding.

        Returns
        -------
        torch.Tensor
            [B, T_t, D] H_T.
        """
        if input_ids.shape != pad_mask.shape:
            raise ValueError(
                f"input_ids {tuple(input_ids.shape)} and pad_mask {tuple(pad_mask.shape)} differ"
            )
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            out = self.model(input_ids=input_ids, attention_mask=(~pad_mask).long())
        return self.proj(out.last_hidden_state)

    def embed_tokens(self, input_ids):
        """TE(z) + PE(z) of the encoder's own embedding tables (positions from 0), [K, L, E]."""
        embeddings = getattr(self.model, "embeddings", None)
        if embeddings is not None:
            return embeddings(input_ids=input_ids)
        return self.model.get_input_embeddings()(input_ids)


def pad_mask_like(states, pad_mask):
    """Check that a pad mask matches states [B, T, D]; return it (used at lobe boundaries)."""
    if pad_mask.shape != states.shape[:2] or pad_mask.dtype != torch.bool:
        raise ValueError(
            f"pad mask must be bool {tuple(states.shape[:2])} (True = padding), got "
            f"{pad_mask.dtype} {tuple(pad_mask.shape)}"
        )
    return pad_mask


__all__ = ["SpeechEncoder", "TextEncoder", "pad_mask_like"]
