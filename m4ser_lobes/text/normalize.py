"""The one text normaliser of M4SER: WER, alignment and text encoder read the same words.

One normaliser (:func:`normalize_text`) serves the WER (:mod:`m4ser_lobes.text.statistics`), the
alignment (:mod:`m4ser_lobes.text.alignment`) and the text fed to the text encoder, so the
encoder's tokens are exactly the tokens that the AED labels index (docs/design.md §4).

Example
-------
>>> normalize_text("I’m NOT going... [LAUGHTER]")
"i'm not going"
"""

import re
import unicodedata

__all__ = ["normalize_text"]


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


def normalize_text(text):
    """Normalise a transcript or hypothesis for WER, alignment and the text encoder.

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
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects a str, got {type(text).__name__}: {text!r}")
    text = text.replace(_MOJIBAKE_APOSTROPHE, "'").translate(_QUOTES)
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = _TAGS.sub(" ", text)
    text = "".join(ch if _keep_char(ch) else " " for ch in text)
    return " ".join(w for w in text.split() if w.strip("'"))
