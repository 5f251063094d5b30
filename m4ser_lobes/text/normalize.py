"""The one text normaliser of M4SER: WER, alignment and text encoder read the same words.

One normaliser (:func:`normalize_text`) serves the WER (:mod:`m4ser_lobes.text.statistics`), the
alignment (:mod:`m4ser_lobes.text.alignment`) and the text fed to the text encoder, so the
encoder's tokens are exactly the tokens that the AED labels index (docs/design.md §4). With
``keep_punctuation`` (the paper's reading: the encoder reads the original hypothesis tokens) the
encoder reads :func:`normalize_keeping_punctuation` instead: the same words, with the
hypothesis's punctuation between them as items of their own (:func:`is_punctuation`), which the
AED labels ignore.

Example
-------
>>> normalize_text("I’m NOT going... [LAUGHTER]")
"i'm not going"
>>> normalize_keeping_punctuation("I’m NOT going... [LAUGHTER]")
"i'm not going ..."
"""

import re
import unicodedata
from itertools import groupby

__all__ = ["normalize_text", "normalize_keeping_punctuation", "is_punctuation"]


# Curly quotes, primes, accents used as apostrophes, and the cp1252 quote bytes that MELD's old
# CSVs leave behind when read as latin-1 (U+0091/U+0092/U+0093/U+0094).
_QUOTES = str.maketrans(
    "\u2018\u2019\u201a\u201b\u2032\u00b4`\u0091\u0092" + "\u201c\u201d\u201e\u2033\u0093\u0094",
    "'" * 9 + '"' * 6,
)
# UTF-8 '’' read as cp1252, as found in some MELD copies.
_MOJIBAKE_APOSTROPHE = "\u00e2\u20ac\u2122"
# Non-speech tags: [LAUGHTER], <noise>, (laughs) — the same brackets Whisper's normaliser removes.
_TAGS = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)")


def _keep_char(ch):
    """True for letters, digits, combining marks and the apostrophe; the rest is punctuation."""
    return ch.isalnum() or ch == "'" or unicodedata.category(ch).startswith("M")


def _is_symbol(ch):
    """True for punctuation and symbols (Unicode P* and S*): what the switch keeps."""
    return unicodedata.category(ch)[0] in "PS"


def _prepare(text, caller):
    """Quotes unified, NFKC, lowercase, bracketed tags replaced by a space."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"{caller} expects a str, got {type(text).__name__}: {text!r}")
    text = text.replace(_MOJIBAKE_APOSTROPHE, "'").translate(_QUOTES)
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    return _TAGS.sub(" ", text)


def normalize_text(text):
    """Normalise a transcript or hypothesis for WER, alignment and the text encoder.

    The text encoder reads this text unless ``keep_punctuation`` is on; then it reads
    :func:`normalize_keeping_punctuation`, whose words are these.

    Steps: unify curly quotes and apostrophes; NFKC; lowercase; strip bracketed non-speech tags
    (``[LAUGHTER]``, ``<noise>``, ``(laughs)``); replace every other punctuation or symbol by a
    space (apostrophes are kept wherever they stand — "don't", "'cause", "goin'" — and words made
    only of apostrophes are dropped); collapse spaces.

    Arguments
    ---------
    text : str or None
        Raw text; ``None`` is treated as empty.

    Returns
    -------
    str
        Lowercase words separated by single spaces (possibly empty).

    Example
    -------
    >>> normalize_text("Oh my God, you’re… [LAUGHTER] “late”!")
    "oh my god you're late"
    >>> normalize_text("  [BREATHING]  ")
    ''
    >>> normalize_text("well-known U.S. (laughs) 50%")
    'well known u s 50'
    """
    text = "".join(ch if _keep_char(ch) else " " for ch in _prepare(text, "normalize_text"))
    return " ".join(w for w in text.split() if w.strip("'"))


def is_punctuation(item):
    """True for an item of :func:`normalize_keeping_punctuation` that is not a word.

    Example
    -------
    >>> is_punctuation("?!"), is_punctuation("'"), is_punctuation("don't"), is_punctuation("")
    (True, True, False, True)
    """
    return not any(_keep_char(ch) and ch != "'" for ch in item)


def normalize_keeping_punctuation(text):
    """The words of :func:`normalize_text` with the text's punctuation kept between them.

    The same steps as :func:`normalize_text` (quotes, NFKC, lowercase, tags), but a run of
    punctuation or symbols (Unicode P*, S*; a run of apostrophes standing alone too) becomes an
    item of its own instead of a space; other characters (spaces, controls) separate items.
    Items are joined by single spaces, so a word never shares a character with punctuation and
    the words are exactly those of :func:`normalize_text`::

        [w for w in kept.split(" ") if not is_punctuation(w)] == normalize_text(text).split()

    A WordPiece tokenizer (BERT) gives the same tokens as for the raw hypothesis ("what?" and
    "what ?" are both ``what``, ``?``); a byte-level BPE (RoBERTa) sees " ?" for "?".

    ``text`` as for :func:`normalize_text`; returns lowercase words and punctuation runs
    separated by single spaces (possibly empty).

    Example
    -------
    >>> normalize_keeping_punctuation("You did WHAT?! [LAUGHTER]")
    'you did what ?!'
    >>> normalize_keeping_punctuation("well-known U.S. (laughs) 50% ' ok")
    "well - known u . s . 50 % ' ok"
    """

    def kind(ch):
        return "word" if _keep_char(ch) else "punct" if _is_symbol(ch) else "space"

    text = _prepare(text, "normalize_keeping_punctuation")
    runs = [(k, "".join(chars)) for k, chars in groupby(text, key=kind)]
    runs = [("punct" if k == "word" and not run.strip("'") else k, run) for k, run in runs]
    items = (
        "".join(run for _, run in group)
        for k, group in groupby(runs, key=lambda kr: kr[0])
        if k != "space"
    )
    return " ".join(items)
