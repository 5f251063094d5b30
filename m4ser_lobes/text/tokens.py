"""Tokenisation with a word index per token: the bridge between words and WordPiece ids.

The AED labels are decided per word (:mod:`m4ser_lobes.text.alignment`) and expanded to the
WordPiece tokens of the text encoder. Tokens are mapped to words through the fast tokenizer's
character offsets, so the code also holds for context-dependent tokenizers (byte-level BPE of
RoBERTa). Every function here takes *normalised* text (:func:`m4ser_lobes.text.normalize.
normalize_text`) except :func:`encode_hypothesis`, which normalises itself.

Example
-------
>>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
>>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"), ["hello"])
>>> ids, owners, words = tokenize_words("hello word", tok, add_special_tokens=True)
>>> tok.convert_ids_to_tokens(ids), owners  # -1: special token
(['[CLS]', 'hello', 'w', '##o', '##r', '##d', '[SEP]'], [-1, 0, 1, 1, 1, 1, -1])
>>> word_spans(owners)  # token positions of each word
[[1], [2, 3, 4, 5]]
"""

from bisect import bisect_right

from m4ser_lobes.text.normalize import normalize_text

__all__ = ["tokenize_words", "word_spans", "encode_with_specials", "cut_ids", "encode_hypothesis"]


def _check_tokenizer(tokenizer):
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is a slow tokenizer; the alignment needs character "
            "offsets. Load it with AutoTokenizer.from_pretrained(name, use_fast=True)."
        )


def tokenize_words(text, tokenizer, add_special_tokens):
    """Tokenise normalised ``text``; return ids, the word index of each id (-1: special), words.

    Token i belongs to the word that contains its last character (robust to offsets that include
    the leading space, as byte-level BPE may give).

    Arguments
    ---------
    text : str
        Normalised text: words separated by single spaces.
    tokenizer : transformers.PreTrainedTokenizerFast
    add_special_tokens : bool
        Add the tokenizer's [CLS]/[SEP] (their word index is -1).

    Returns
    -------
    tuple
        ``(ids, owners, words)``: list of int, list of int (one per id), list of str.
    """
    _check_tokenizer(tokenizer)
    words = text.split(" ") if text else []
    starts, pos = [], 0
    for word in words:
        starts.append(pos)
        pos += len(word) + 1
    enc = tokenizer(
        text,
        add_special_tokens=add_special_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=False,
        verbose=False,
    )
    owners = []
    for (start, end), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        if special:
            owners.append(-1)
        else:
            last_char = end - 1 if end > start else start
            owners.append(max(bisect_right(starts, last_char) - 1, 0))
    return list(enc["input_ids"]), owners, words


def word_spans(owners):
    """Group token positions by word: one list of positions per word, in text order.

    Example
    -------
    >>> word_spans([-1, 0, 1, 1, -1])
    [[1], [2, 3]]
    """
    spans = {}
    for position, owner in enumerate(owners):
        if owner >= 0:
            spans.setdefault(owner, []).append(position)
    return [spans[w] for w in sorted(spans)]


def encode_with_specials(text, tokenizer):
    """Ids and word indices of normalised ``text`` wrapped in [CLS] ... [SEP]; checks the wrap."""
    ids, owners, _ = tokenize_words(text, tokenizer, add_special_tokens=True)
    if len(ids) < 2 or owners[0] != -1 or owners[-1] != -1:
        raise ValueError(
            f"{type(tokenizer).__name__} does not wrap text in a leading and a trailing special "
            "token ([CLS] ... [SEP]); AED needs a BERT-family tokenizer (BERT, RoBERTa, ...)."
        )
    return ids, owners


def cut_ids(ids, max_length):
    """Keep the first ``max_length - 1`` ids and the final special token ([SEP]).

    Example
    -------
    >>> cut_ids([101, 7, 8, 9, 102], 3), cut_ids([101, 7, 102], None)
    ([101, 7, 102], [101, 7, 102])
    """
    if max_length is None or len(ids) <= max_length:
        return list(ids)
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 to hold [CLS] and [SEP], got {max_length}")
    return list(ids[: max_length - 1]) + [ids[-1]]


def encode_hypothesis(hypothesis, tokenizer, max_length=None):
    """WordPiece ids of a normalised hypothesis with [CLS]/[SEP], for inference without reference.

    The ids are exactly the ``input_ids`` of :func:`m4ser_lobes.text.alignment.align_transcripts`
    for the same arguments.

    Arguments
    ---------
    hypothesis : str
        Raw ASR hypothesis (normalised here).
    tokenizer : transformers.PreTrainedTokenizerFast
        The text encoder's tokenizer.
    max_length : int, optional
        Cap on the number of ids including [CLS] and [SEP]; longer inputs keep their first
        ``max_length - 1`` ids and the final [SEP].

    Returns
    -------
    list of int

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok))
    ['[CLS]', 'i', 'know', 'okay', '[SEP]']
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok, max_length=3))
    ['[CLS]', 'i', '[SEP]']
    """
    ids, _ = encode_with_specials(normalize_text(hypothesis), tokenizer)
    return cut_ids(ids, max_length)

