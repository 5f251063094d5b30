"""Tiny, randomly initialised Hugging Face models saved to disk, for tests and the demo.

Also the tiny model sizes every test passes to ``hparams/m4ser.yaml`` (:data:`TINY_OVERRIDES`),
and the command line of a run for tests that start ``train.py`` in a subprocess (:func:`override_argv`).

Nothing here downloads anything: every model is built from a config, initialised at random and
written with ``save_pretrained`` into a folder, together with the files a hub repository would
hold (``preprocessor_config.json`` for speech encoders, a real WordPiece tokenizer for text
encoders, a processor for Whisper). The folder is then loaded through exactly the code path that a
hub id takes (``AutoModel.from_pretrained(folder)``), so the tests exercise the real loaders.

Example
-------
>>> tmp = getfixture("tmp_path")
>>> speech_dir = save_tiny_speech_encoder(tmp / "hubert", kind="hubert")
>>> text_dir = save_tiny_text_encoder(tmp / "bert", words=["hello", "world"])
>>> sorted(p.name for p in text_dir.iterdir())  # doctest: +ELLIPSIS
['config.json', 'model.safetensors', ..., 'vocab.txt']
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

# The sizes that shrink ``hparams/m4ser.yaml`` around the tiny encoders below (``hidden_size=32``):
# every test that builds or trains an M4SER passes these overrides (plus its own run settings).
TINY_OVERRIDES = {
    "d_model": 32,
    "nhead": 2,
    "cme_ffn": 64,
    "aec_ffn": 64,
    "discriminator_hidden": 32,
}



def override_argv(hparams_file, overrides, *flags):
    """A recipe's command line: ``hparams_file``, then ``--key=value`` per override (None -> null).

    Example
    -------
    >>> override_argv("h.yaml", {"d_model": 32, "expected_utterances": None}, "--device=cpu")
    ['h.yaml', '--d_model=32', '--expected_utterances=null', '--device=cpu']
    """
    argv = [str(hparams_file)]
    argv += [f"--{key}={'null' if value is None else value}" for key, value in overrides.items()]
    return argv + list(flags)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Words that every tiny vocabulary holds whole; anything else is split into WordPiece pieces.
COMMON_WORDS = [
    "i", "you", "it", "the", "a", "to", "and", "is", "that", "what", "do", "don't", "not",
    "me", "my", "so", "this", "we", "no", "yes", "oh", "okay", "well", "just", "know",
    "he", "she", "they", "was", "are", "have", "be", "of", "in", "on", "for", "with",
    "s", "t", "'",
]


def build_wordpiece_vocab(words=(), max_whole_words=400):
    """Return a WordPiece vocabulary: specials, single characters, ``##`` continuations, words.

    Characters and their ``##`` forms make every lowercase word tokenizable, so words missing
    from the list split into several sub-tokens (what the AED labels must handle).

    Arguments
    ---------
    words : iterable of str
        Words to keep whole (after the common words); order is kept, duplicates dropped.
    max_whole_words : int
        At most this many whole words are added.

    Returns
    -------
    list of str

    Example
    -------
    >>> vocab = build_wordpiece_vocab(["angry"])
    >>> vocab[:5], "angry" in vocab, "##q" in vocab
    (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], True, True)
    """
    chars = list(string.ascii_lowercase + string.digits + "'")
    vocab = list(SPECIAL_TOKENS) + chars + ["##" + c for c in chars]
    seen = set(vocab)
    added = 0
    for word in list(COMMON_WORDS) + list(words):
        word = word.lower()
        if word and word not in seen and added < max_whole_words:
            vocab.append(word)
            seen.add(word)
            added += 1
    return vocab


def save_wordpiece_tokenizer(folder, words=(), max_whole_words=400):
    """Write a real BERT WordPiece tokenizer (``vocab.txt`` + configs) into ``folder``.

    Arguments
    ---------
    folder : str or Path
        Output folder (created).
    words : iterable of str
        Whole words for the vocabulary, see :func:`build_wordpiece_vocab`.
    max_whole_words : int
        Cap on whole words.

    Returns
    -------
    transformers.PreTrainedTokenizerBase
        The tokenizer, as ``AutoTokenizer.from_pretrained(folder)`` loads it.
    """
    from transformers import AutoTokenizer, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = build_wordpiece_vocab(words, max_whole_words)
    vocab_path = folder / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab_path), do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder))


def save_tiny_text_encoder(folder, words=(), kind="bert", hidden_size=32, num_layers=2, seed=0):
    """Save a tiny random BERT-family encoder and its WordPiece tokenizer into ``folder``.

    Arguments
    ---------
    folder : str or Path
        Output folder.
    words : iterable of str
        Whole words of the vocabulary.
    kind : str
        ``"bert"`` or ``"roberta"`` (a RoBERTa model over the same WordPiece vocabulary).
    hidden_size : int
        Width of the encoder (``D_text``).
    num_layers : int
        Transformer layers.
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    Path
        ``folder``, loadable with ``AutoModel.from_pretrained``.
    """
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    folder = Path(folder)
    tokenizer = save_wordpiece_tokenizer(folder, words)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    if kind == "bert":
        model = BertModel(BertConfig(**common), add_pooling_layer=False)
    elif kind == "roberta":
        model = RobertaModel(RobertaConfig(**common), add_pooling_layer=False)
    else:
        raise ValueError(f"kind must be 'bert' or 'roberta', got {kind!r}")
    model.save_pretrained(str(folder))
    return folder


def save_tiny_speech_encoder(folder, kind="hubert", hidden_size=32, num_layers=2, seed=0):
    """Save a tiny random HuBERT / WavLM / wav2vec2 model with its ``preprocessor_config.json``.

    The CNN feature encoder has three layers (strides 5, 8, 8): a hop of 320 samples, i.e. 50
    frames per second of 16 kHz audio, as in the base checkpoints. HuBERT and wav2vec2 use group
    norm (``feat_extract_norm="group"``), WavLM layer norm, like their base checkpoints;
    ``"hubert-layer"`` and ``"wav2vec2-layer"`` use layer norm and the stable-layer-norm encoder
    (``do_stable_layer_norm``), like ``hubert-large-ll60k`` and ``wav2vec2-large-lv60``.

    Arguments
    ---------
    folder : str or Path
        Output folder.
    kind : str
        ``"hubert"``, ``"wavlm"``, ``"wav2vec2"``, ``"hubert-layer"`` or ``"wav2vec2-layer"``.
    hidden_size : int
        Encoder width (``D_speech``).
    num_layers, seed : int
        Transformer layers and seed of the random initialisation (as for the text encoder).

    Returns
    -------
    Path
        ``folder``, loadable with ``AutoModel.from_pretrained``.
    """
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WavLMConfig,
        WavLMModel,
    )

    classes = {
        "hubert": (HubertConfig, HubertModel, "group"),
        "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model, "group"),
        "wavlm": (WavLMConfig, WavLMModel, "layer"),
        "hubert-layer": (HubertConfig, HubertModel, "layer"),
        "wav2vec2-layer": (Wav2Vec2Config, Wav2Vec2Model, "layer"),
    }
    if kind not in classes:
        raise ValueError(f"kind must be one of {sorted(classes)}, got {kind!r}")
    config_cls, model_cls, norm = classes[kind]
    config = config_cls(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 8, 8),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        layerdrop=0.0,
    )
    torch.manual_seed(seed)
    model = model_cls(config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=norm == "layer",
    ).save_pretrained(str(folder))
    return folder


def save_tiny_whisper(folder, words=(), seed=0):
    """Save a tiny random Whisper model with a processor (tokenizer + feature extractor).

    The tokenizer is a byte-level BPE built from ``words``; the transcripts the random model
    produces are gibberish, but every code path (feature extraction, batched ``generate``,
    decoding) is the real one.

    Arguments
    ---------
    folder : str or Path
        Output folder.
    words : iterable of str
        Words for the BPE training corpus.
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    Path
        ``folder``, loadable with ``WhisperForConditionalGeneration.from_pretrained`` and
        ``WhisperProcessor.from_pretrained``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|transcribe|>",
        "<|translate|>",
        "<|notimestamps|>",
        "<|nocaptions|>",
        "<|startoflm|>",
        "<|startofprev|>",
    ]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = list(words) or list(COMMON_WORDS)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator([" ".join(corpus)] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe)
    fast.save_pretrained(str(folder / "_bpe"))
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(folder / "_bpe" / "tokenizer.json"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in specials}
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config.decoder_start_token_id = ids["<|startoftranscript|>"]
    model.generation_config.forced_decoder_ids = None
    model.generation_config.max_length = 24
    model.generation_config.no_timestamps_token_id = ids["<|notimestamps|>"]
    model.generation_config.is_multilingual = False
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    WhisperFeatureExtractor(feature_size=80).save_pretrained(str(folder))
    return folder
