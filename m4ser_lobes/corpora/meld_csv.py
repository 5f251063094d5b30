"""MELD CSVs: their encoding, their rows, their transcripts (part of the MELD preparation).

:mod:`m4ser_lobes.corpora.meld` finds the three ``*_sent_emo.csv`` files and calls
:func:`read_csv` on each. The columns are ``Sr No., Utterance, Speaker, Emotion, Sentiment,
Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime`` (times as ``00:16:16,059``).

Encoding. Copies of the CSVs circulate in UTF-8 (with or without byte-order mark) and in cp1252
(the older ones, with curly quotes as single bytes: ``\\x92`` for ``’``, ``\\x85`` for ``…``).
Each file is read whole in one encoding, decided by :func:`decode_csv_bytes`:

* valid UTF-8: UTF-8;
* otherwise cp1252, but only when the file is cp1252 through and through: every byte is defined
  in cp1252 and the file holds no valid multi-byte UTF-8 sequence. A cp1252 file writes its
  non-ASCII characters as single bytes, a UTF-8 file as sequences of 2 to 4 bytes. English text
  in cp1252 forms such a sequence only by accident (an accented letter right before a curly
  quote, a dash or another symbol), while a UTF-8 file with one corrupt byte keeps all its other
  sequences; reading it as cp1252 would turn every ``’`` of it into ``â€™``;
* anything else is a :class:`MeldPrepError` naming the file, the line, the byte offset and value
  of the offending bytes (and, for a cp1252 file with such an accident, the sequence found): no
  character is ever replaced silently.

The encoding of each file goes into the preparation summary (``csv_encoding``). The typographic
characters of the transcripts are then normalised (:data:`TYPOGRAPHY`: ``’`` -> ``'``, ``…`` ->
``...``, ``–`` -> ``-``, no-break space -> space), so a UTF-8 and a cp1252 copy give the same rows.

Example
-------
>>> path = getfixture("tmp_path") / "dev_sent_emo.csv"
>>> header = ",".join(CSV_COLUMNS)
>>> row = '1,"I\u2019m fine\u2026",Joey,Joy,positive,0,0,1,1,"00:00:01,000","00:00:02,500"'
>>> _ = path.write_bytes(f"{header}\\n{row}\\n".encode("cp1252"))
>>> rows, encoding = read_csv(path, "dev")
>>> encoding, rows[0].transcript, rows[0].emotion, rows[0].end
('cp1252', "I'm fine...", 'joy', 2.5)
"""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path
from typing import NamedTuple

from m4ser_lobes.data import prep

logger = logging.getLogger(__name__)

EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
CSV_COLUMNS = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
               "Utterance_ID", "Season", "Episode", "StartTime", "EndTime")
# cp1252 typography (and the same characters as C1 controls, as some UTF-8 copies hold them).
TYPOGRAPHY = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...",
    "\u2013": "-", "\u2014": "-", "\u00a0": " ",
    "\x91": "'", "\x92": "'", "\x93": '"', "\x94": '"', "\x85": "...", "\x96": "-", "\x97": "-",
}

_CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"  # the bytes cp1252 leaves unassigned
_TIME = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")


class MeldPrepError(prep.PrepError):
    """The corpus on disk is not what the prep expects; the message says what to do."""


class Row(NamedTuple):
    """One CSV row, parsed."""

    utt_id: str
    split: str
    dialogue: int
    utterance: int
    emotion: str
    speaker: str
    transcript: str
    start: float
    end: float


def utterance_id(split, dialogue, utterance):
    """Return the manifest id of a MELD utterance (dialogue ids repeat across splits).

    Example
    -------
    >>> utterance_id("dev", 110, 7)
    'dev_dia110_utt7'
    """
    return f"{split}_dia{dialogue}_utt{utterance}"


def normalize_transcript(text):
    """Replace the typographic characters of :data:`TYPOGRAPHY`, collapse spaces, strip.

    Example
    -------
    >>> normalize_transcript("\\u201cOh\\u2026 I\\u2019m\\u00a0fine \\u2013 really.\\u201d ")
    '"Oh... I\\'m fine - really."'
    """
    for char, plain in TYPOGRAPHY.items():
        text = text.replace(char, plain)
    return re.sub(r"[ \t]+", " ", text).strip()


def decode_csv_bytes(data, name="<bytes>"):
    """Decode a MELD CSV read as bytes: UTF-8 (BOM dropped), or cp1252 when the file is cp1252.

    The rule of the module docstring: UTF-8 when the bytes are valid UTF-8; cp1252 when they are
    not, every byte is defined in cp1252 and no valid multi-byte UTF-8 sequence occurs; otherwise
    :class:`MeldPrepError` naming ``name``, the line (1-based), the byte offset (0-based) and the
    value of the first (up to five) offending bytes.

    Arguments
    ---------
    data : bytes
    name : str
        The file, for the error message.

    Returns
    -------
    text : str
    encoding : str
        ``"utf-8"`` or ``"cp1252"``.

    Example
    -------
    >>> decode_csv_bytes("I\\u2019m\\u2026".encode("cp1252"))
    ('I’m…', 'cp1252')
    >>> decode_csv_bytes("\\ufeffI\\u2019m\\u2026".encode("utf-8"))
    ('I’m…', 'utf-8')
    >>> decode_csv_bytes("I\\u2019m\\nok\\x92".encode("utf-8")[:-2] + b"\\x92", "a.csv")
    Traceback (most recent call last):
      ...
    m4ser_lobes.corpora.meld_csv.MeldPrepError: a.csv:2: byte 0x92 at offset 8 is not UTF-8 (it
    is '’' in cp1252), but the file is not cp1252 either: it holds 1 UTF-8 multi-byte character(s)
    (the first, '’', on line 1); replace ...
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Positions of the bytes that are not UTF-8, and of the valid multi-byte sequences.
    escaped = data.decode("utf-8", errors="surrogateescape")
    bad, multibyte, offset = [], [], 0
    for char in escaped:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            bad.append((offset, code - 0xDC00))
            offset += 1
        elif code >= 0x80:
            multibyte.append((offset, char))
            offset += len(char.encode("utf-8"))
        else:
            offset += 1
    if not multibyte:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError as error:
            undefined = [(i, data[i]) for i in range(error.start, len(data))
                         if bytes([data[i]]) in _CP1252_UNDEFINED]
            raise MeldPrepError(
                f"{name}:{_line(data, error.start)}: neither UTF-8 nor cp1252: "
                f"{_byte_list(data, undefined)} undefined in cp1252; "
                "replace the bad byte(s) with the character(s) meant and save the file as UTF-8, "
                "or restore it from MELD.Raw.tar.gz") from None
    first, char = multibyte[0]
    cp1252 = bytes([bad[0][1]]).decode("cp1252", errors="replace")
    meant = f" (it is '{cp1252}' in cp1252)" if len(bad) == 1 and cp1252 != "\ufffd" else ""
    raise MeldPrepError(
        f"{name}:{_line(data, bad[0][0])}: {_byte_list(data, bad)} not UTF-8{meant}, "
        f"but the file is not cp1252 either: it holds {len(multibyte)} UTF-8 multi-byte "
        f"character(s) (the first, {char!r}, on line {_line(data, first)}); "
        "replace the bad byte(s) with the character(s) meant, in UTF-8, or restore the "
        "file from MELD.Raw.tar.gz")


def _line(data, offset):
    """1-based line of byte ``offset``."""
    return data.count(b"\n", 0, offset) + 1


def _byte_list(data, found, n=5):
    """``byte 0x92 at offset 8 is`` / ``2 bytes, 0x92 at offset 8 (line 2), 0x85 at ..., are``."""
    if len(found) == 1:
        return f"byte 0x{found[0][1]:02X} at offset {found[0][0]} is"
    return f"{len(found)} bytes, " + prep.short_list(
        [f"0x{v:02X} at offset {o} (line {_line(data, o)})" for o, v in found], n) + ", are"


def parse_time(value):
    """Seconds of a CSV time ``H:MM:SS,mmm`` (a ``.`` before the milliseconds also works).

    Example
    -------
    >>> parse_time("00:16:16,059"), parse_time("0:00:03.5")
    (976.059, 3.5)
    """
    match = _TIME.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a time like '00:16:16,059'")
    hours, minutes, seconds, fraction = match.groups()
    fraction = float(f"0.{fraction}") if fraction else 0.0
    return round(int(hours) * 3600 + int(minutes) * 60 + int(seconds) + fraction, 3)


def parse_row(fields, split):
    """Turn one CSV record (column -> text) into a :class:`Row`; ValueError says what is wrong.

    A time that does not parse gives ``start`` / ``end`` None (times are metadata; the prep
    flags the row ``bad_span``); an unknown emotion or a non-integer id raises.

    Example
    -------
    >>> parse_row({"Utterance": "Oh my God, he\\u2019s lost it.", "Speaker": "Monica",
    ...            "Emotion": "Surprise", "Dialogue_ID": "0", "Utterance_ID": "3",
    ...            "StartTime": "00:16:16,059", "EndTime": "00:16:17,500"}, "train")
    Row(utt_id='train_dia0_utt3', split='train', dialogue=0, utterance=3, emotion='surprise',
        speaker='Monica', transcript="Oh my God, he's lost it.", start=976.059, end=977.5)
    """
    emotion = fields["Emotion"].strip().lower()
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown Emotion {fields['Emotion']!r} (known: {', '.join(EMOTIONS)})")
    try:
        dialogue, utterance = int(fields["Dialogue_ID"]), int(fields["Utterance_ID"])
    except ValueError:
        raise ValueError(f"Dialogue_ID {fields['Dialogue_ID']!r} / Utterance_ID "
                         f"{fields['Utterance_ID']!r} are not integers") from None
    return Row(
        utterance_id(split, dialogue, utterance), split, dialogue, utterance, emotion,
        normalize_transcript(fields["Speaker"]), normalize_transcript(fields["Utterance"]),
        _time_or_none(fields["StartTime"]), _time_or_none(fields["EndTime"]),
    )


def _time_or_none(value):
    """A CSV time in seconds, or None when it does not parse (the row stays usable)."""
    try:
        return parse_time(value or "")
    except ValueError:
        return None


def read_csv(path, split):
    """Read one ``*_sent_emo.csv``; return ``(rows, encoding)``, rows in file order.

    Raises :class:`MeldPrepError` naming the file and line of every problem (missing columns,
    unknown emotion, bad numbers or times, an utterance listed twice).
    """
    path = Path(path)
    text, encoding = decode_csv_bytes(path.read_bytes(), str(path))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise MeldPrepError(f"{path}: missing column(s) {missing}; the header must hold "
                            f"{','.join(CSV_COLUMNS)}. Restore the file from MELD.Raw.tar.gz.")
    reader.fieldnames = columns
    rows, seen, problems = [], {}, []
    for record in reader:
        line = reader.line_num
        try:
            row = parse_row(record, split)
        except (ValueError, TypeError, AttributeError) as error:  # short rows give None fields
            problems.append(f"{path}:{line}: {error}")
            continue
        if row.start is None or row.end is None:
            logger.warning("%s:%d: StartTime %r / EndTime %r do not parse; %s is flagged "
                           "bad_span", path, line, record["StartTime"], record["EndTime"],
                           row.utt_id)
        if row.utt_id in seen:
            problems.append(f"{path}:{line}: dia{row.dialogue}_utt{row.utterance} repeats line "
                            f"{seen[row.utt_id]}")
            continue
        seen[row.utt_id] = line
        rows.append(row)
    prep.raise_problems(problems, "MELD",
                        "Fix these rows or restore the file from MELD.Raw.tar.gz",
                        error=MeldPrepError)
    return rows, encoding


def check_counts(found, expected, what, hint="Check that the CSVs and clip archives were "
                                             "extracted completely"):
    """Raise when per-split counts differ from the expected ones (None: accept anything).

    Example
    -------
    >>> check_counts({"train": 3}, None, "kept utterances")
    >>> try:
    ...     check_counts({"train": 3, "dev": 1}, {"train": 3, "dev": 2}, "kept utterances")
    ... except MeldPrepError as error:
    ...     print(error)
    found 4 kept utterances, expected 5 (dev: 1, expected 2). Check that the CSVs and ...
    """
    if expected is None:
        return
    wrong = {s: (found.get(s, 0), n) for s, n in expected.items() if found.get(s, 0) != n}
    if wrong:
        detail = ", ".join(f"{s}: {f}, expected {n}" for s, (f, n) in wrong.items())
        raise MeldPrepError(
            f"found {sum(found.values())} {what}, expected {sum(expected.values())} ({detail}). "
            f"{hint}; for part of the corpus pass expected_counts=None (--subset)."
        )
