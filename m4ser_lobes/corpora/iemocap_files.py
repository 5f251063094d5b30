"""IEMOCAP's file formats: the EvaluationHeader and transcription lines, and what an utterance id
says (session, speaker, gender, dialog). Used by :mod:`m4ser_lobes.corpora.iemocap`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from m4ser_lobes.data import prep


_HEADER = re.compile(
    r"^\[(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\]\s+(\S+)\s+(\w+)\s+"
    r"\[([^,\]]+),\s*([^,\]]+),\s*([^,\]]+)\]"
)
_TRANSCRIPTION = re.compile(r"^(\S+) \[(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\]:\s?(.*)$")
_UTT_ID = re.compile(r"^Ses(\d+)[FM]_\w+_([FM])[0-9X]{3}$")


class EvaluationHeader(NamedTuple):
    """One EmoEvaluation block header."""

    utt_id: str
    label: str
    start: float
    end: float
    vad: tuple  # valence, activation, dominance (evaluator means, 1..5)


class Transcription(NamedTuple):
    """One line of a transcription file."""

    utt_id: str
    start: float
    end: float
    text: str


class Utterance(NamedTuple):
    """Everything prep knows about a kept utterance."""

    utt_id: str
    emo: str
    session: int
    speaker: str
    gender: str
    wav: Path
    transcript: str


class IemocapPrepError(prep.PrepError):
    """The corpus on disk is not what the prep expects; the message says what to do."""


def parse_evaluation_header(line):
    """Parse an EmoEvaluation block header; return None for any other line.

    Arguments
    ---------
    line : str
        One line of ``dialog/EmoEvaluation/<dialog>.txt``.

    Returns
    -------
    EvaluationHeader or None

    Example
    -------
    >>> parse_evaluation_header(
    ...     "[140.2250 - 145.6000]\\tSes01F_impro05_F019\\tang\\t[1.5000, 4.0000, 4.5000]\\r\\n")
    EvaluationHeader(utt_id='Ses01F_impro05_F019', label='ang', start=140.225, end=145.6,
                     vad=(1.5, 4.0, 4.5))
    >>> parse_evaluation_header("C-E1:\\tAnger;\\t()") is None
    True
    >>> parse_evaluation_header("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]") is None
    True
    """
    match = _HEADER.match(line.strip())
    if match is None:
        return None
    start, end, utt_id, label, *vad = match.groups()
    return EvaluationHeader(utt_id, label, float(start), float(end),
                            tuple(float(x) for x in vad))


def parse_transcription_line(line):
    """Parse a transcription line ``UTT_ID [START-END]: text``; return None if it is not one.

    Arguments
    ---------
    line : str
        One line of ``dialog/transcriptions/<dialog>.txt``.

    Returns
    -------
    Transcription or None

    Example
    -------
    >>> parse_transcription_line("Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.")
    Transcription(utt_id='Ses01F_impro01_F000', start=6.2901, end=8.2357, text='Excuse me.')
    >>> parse_transcription_line("M: [BREATHING]") is None
    True
    """
    match = _TRANSCRIPTION.match(line.strip())
    if match is None:
        return None
    utt_id, start, end, text = match.groups()
    return Transcription(utt_id, float(start), float(end), text.strip())


def gender_of(utt_id):
    """Return the speaker's gender, the letter that starts the last ``_`` part of the id.

    Example
    -------
    >>> gender_of("Ses01F_impro01_M013"), gender_of("Ses03M_impro05a_F007")
    ('M', 'F')
    """
    letter = utt_id.rsplit("_", 1)[-1][:1]
    if "_" not in utt_id or letter not in ("F", "M"):
        raise ValueError(f"{utt_id!r} is not an IEMOCAP utterance id like 'Ses01F_impro01_F000'")
    return letter


def session_of(utt_id):
    """Return the session number of an utterance id.

    Example
    -------
    >>> session_of("Ses05M_script01_1b_F003")
    5
    """
    match = _UTT_ID.match(utt_id)
    if match is None:
        raise ValueError(f"{utt_id!r} is not an IEMOCAP utterance id like 'Ses01F_impro01_F000'")
    return int(match.group(1))


def speaker_of(utt_id):
    """Return the speaker of an utterance: session and gender, e.g. ``'Ses03F'``.

    Each session has one female and one male actor, so this names the person.

    Example
    -------
    >>> speaker_of("Ses01F_impro01_M013"), speaker_of("Ses03M_impro05a_F007")
    ('Ses01M', 'Ses03F')
    """
    return f"Ses{session_of(utt_id):02d}{gender_of(utt_id)}"


def dialog_of(utt_id):
    """Return the dialog of an utterance id (everything before the last ``_``).

    Example
    -------
    >>> dialog_of("Ses05M_script01_1b_F003")
    'Ses05M_script01_1b'
    """
    return utt_id.rsplit("_", 1)[0]
