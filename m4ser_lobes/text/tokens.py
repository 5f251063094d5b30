"""Tokenisation with a word index per token: the bridge between words and WordPiece ids.

The AED labels are decided per word (:mod:`m4ser_lobes.text.alignment`) and expanded to the
WordPiece tokens of the text encoder. Tokens are mapped to words through the fast tokenizer's
character offsets, so the code also holds for context-dependent tokenizers (byte-level BPE of
RoBERTa). Every function here takes *normalised* text (:func:`m4ser_lobes.text.normalize.
normalize_text`, or :func:`encoder_text` with punctuation kept) except :func:`encode_text` and
:func:`encode_hypothesis`, which normalise themselves.

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

from m4ser_lobes.text.normalize import (
    is_punctuation,
    normalize_keeping_punctuation,
    normalize_text,
)

__all__ = [
    "tokenize_words",
    "word_spans",
    "encode_with_specials",
    "cut_ids",
    "encoder_text",
    "split_punctuation",
    "encode_text",
    "encode_hypothesis",
]


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


def encoder_text(text, keep_punctuation=False):
    """The normalised text the text encoder reads (docs/design.md §4).

    Example
    -------
    >>> encoder_text("You did WHAT?"), encoder_text("You did WHAT?", keep_punctuation=True)
    ('you did what', 'you did what ?')
    """
    return normalize_keeping_punctuation(text) if keep_punctuation else normalize_text(text)


def split_punctuation(owners, text):
    """Separate the punctuation tokens of :func:`encoder_text` output from its word tokens.

    Arguments
    ---------
    owners : list of int
        Item index of each token of ``text`` (-1: special), from :func:`tokenize_words`.
    text : str
        The tokenised text (items separated by single spaces).

    Returns
    -------
    tuple
        ``(word_owners, punctuation)``: ``owners`` with -1 for the tokens of punctuation items
        (so :func:`word_spans` sees words only), and the positions of those tokens. Text
        normalised by :func:`normalize_text` has none: ``(owners, [])``.

    Example
    -------
    >>> split_punctuation([-1, 0, 1, 2, -1], "what ?! now")
    ([-1, 0, -1, 2, -1], [2])
    """
    punct = {i for i, item in enumerate(text.split(" ")) if text and is_punctuation(item)}
    if not punct:
        return list(owners), []
    positions = [p for p, owner in enumerate(owners) if owner in punct]
    word_owners = [-1 if owner in punct else owner for owner in owners]
    return word_owners, positions


def encode_text(text, tokenizer, max_length=None, keep_punctuation=False):
    """Ids of the text the encoder reads, with [CLS]/[SEP], and its punctuation positions.

    Arguments
    ---------
    text : str
        Raw hypothesis or transcript (normalised here, :func:`encoder_text`).
    tokenizer : transformers.PreTrainedTokenizerFast
        The text encoder's tokenizer.
    max_length : int, optional
        Cap on the number of ids including [CLS] and [SEP]; longer inputs keep their first
        ``max_length - 1`` ids and the final [SEP].
    keep_punctuation : bool
        Keep the punctuation in the encoder input (the ``keep_punctuation`` YAML key).

    Returns
    -------
    tuple
        ``(ids, punctuation)``: list of int, and the positions in ``ids`` of punctuation tokens,
        which the AED labels ignore (always empty without ``keep_punctuation``).

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"), ["did", "?"])
    >>> ids, punctuation = encode_text("You did what?", tok, keep_punctuation=True)
    >>> tok.convert_ids_to_tokens(ids), punctuation
    (['[CLS]', 'you', 'did', 'what', '?', '[SEP]'], [4])
    """
    normalised = encoder_text(text, keep_punctuation)
    ids, owners = encode_with_specials(normalised, tokenizer)
    _, punctuation = split_punctuation(owners, normalised)
    ids = cut_ids(ids, max_length)
    return ids, [p for p in punctuation if p < len(ids) - 1]


def encode_hypothesis(hypothesis, tokenizer, max_length=None, keep_punctuation=False):
    """WordPiece ids of a normalised hypothesis with [CLS]/[SEP], for inference without reference.

    The ids are exactly the ``input_ids`` of :func:`m4ser_lobes.text.alignment.align_transcripts`
    for the same arguments.

    Arguments are :func:`encode_text`'s (``hypothesis`` is its ``text``).

    Returns
    -------
    list of int

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"), ["?", "!", ","])
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok))
    ['[CLS]', 'i', 'know', 'okay', '[SEP]']
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok, max_length=3))
    ['[CLS]', 'i', '[SEP]']
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok, keep_punctuation=True))
    ['[CLS]', 'i', 'know', ',', 'okay', '?', '!', '[SEP]']
    """
    return encode_text(hypothesis, tokenizer, max_length, keep_punctuation)[0]

