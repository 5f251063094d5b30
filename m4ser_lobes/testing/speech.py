"""Spoken utterances for the look-alike corpora (``m4ser-mini-corpus ... --speech espeak``).

By default the generated corpora carry a harmonic tone per utterance (arousal in its pitch band,
loudness and syllable rate): quick, but no ASR can transcribe it. With ``--speech espeak`` every
utterance's words are spoken by espeak-ng (``apt-get install -y espeak-ng``; ``brew install
espeak-ng`` on macOS), so the documented ASR step (``m4ser-asr``) gives real hypotheses with a
real word error rate. The corpus keeps its cues: the **audio carries arousal** (high: fast, high
pitched and loud; low: slow, low pitched and soft; the speaker's gender picks the voice) and the
**words carry valence**, as in the tone version.

Example
-------
>>> import numpy as np
>>> if espeak_available():
...     audio = speak("i think that is good", np.random.default_rng(0), high_arousal=True, gender="F")
...     audio.dtype, 0.5 < len(audio) / SAMPLE_RATE < 3.0
... else:
...     np.dtype("int16"), True
(dtype('int16'), True)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
#: ``--speech`` choices: the generator's tone, or espeak-ng speech.
SPEECH_KINDS = ("tone", "espeak")
#: ``--speech`` help of both corpora (``m4ser-mini-corpus iemocap|meld``).
SPEECH_HELP = ("tone: a harmonic tone per utterance (fast; no ASR can transcribe it); espeak: the "
               "words spoken by espeak-ng (apt-get install espeak-ng), for a real ASR")
#: espeak-ng prosody per arousal: words per minute (-s), pitch 0-99 (-p), amplitude 0-200 (-a).
PROSODY = {
    True: {"speed": (165, 185), "pitch": (60, 75), "amplitude": (110, 130)},
    False: {"speed": (130, 145), "pitch": (30, 40), "amplitude": (70, 90)},
}
#: espeak-ng voice per speaker gender (en-us with a female/male variant).
VOICES = {"F": "en-us+f3", "M": "en-us+m3"}
INSTALL_HINT = "apt-get install -y espeak-ng (Debian/Ubuntu) or brew install espeak-ng (macOS)"


class SpeechError(RuntimeError):
    """espeak-ng is needed but missing (a one-line message with the fix)."""


def espeak_available():
    """Whether the ``espeak-ng`` program is on PATH."""
    return shutil.which("espeak-ng") is not None


def check_speech(kind):
    """Refuse an unknown ``--speech`` or a missing espeak-ng with one line naming the fix."""
    if kind not in SPEECH_KINDS:
        raise ValueError(f"--speech {kind!r}: choose one of {', '.join(SPEECH_KINDS)}")
    if kind == "espeak" and not espeak_available():
        raise SpeechError(f"--speech espeak needs the espeak-ng program on PATH: {INSTALL_HINT}; "
                           "or leave --speech out for the tone corpus")


def espeak_version():
    """The first line of ``espeak-ng --version`` (recorded beside a spoken corpus)."""
    check_speech("espeak")
    run = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return run.stdout.strip().splitlines()[0].split("  Data at")[0].strip()  # no local path


class Speaker:
    """Speaks with :func:`speak`, drawing the prosody from its own random stream ``rng``.

    Example
    -------
    >>> if espeak_available():
    ...     speaker = Speaker(np.random.default_rng(0))
    ...     fast, slow = speaker("what a day", True, "M"), speaker("what a day", False, "M")
    ...     len(fast) < len(slow), "eSpeak NG" in speaker.version
    ... else:
    ...     True, True
    (True, True)
    """

    def __init__(self, rng):
        self.rng = rng
        self.version = espeak_version()

    def __call__(self, text, high_arousal, gender):
        return speak(text, self.rng, high_arousal, gender)


def speak(text, rng, high_arousal, gender):
    """Speak ``text`` with espeak-ng; returns 16 kHz mono int16 audio.

    Arguments
    ---------
    text : str
        The words (normalised: lower case, no tags).
    rng : numpy.random.Generator
        Draws the speed, pitch, amplitude and background noise.
    high_arousal : bool
        Fast, high and loud (True) or slow, low and soft (False).
    gender : str
        ``"F"`` or ``"M"`` (the voice).

    Returns
    -------
    numpy.ndarray
        int16 samples at :data:`SAMPLE_RATE`.
    """
    from math import gcd

    from scipy.signal import resample_poly  # scipy: a dependency of scikit-learn

    check_speech("espeak")
    prosody = PROSODY[bool(high_arousal)]
    options = []
    for flag, key in (("-s", "speed"), ("-p", "pitch"), ("-a", "amplitude")):
        low, high = prosody[key]
        options += [flag, str(int(rng.integers(low, high + 1)))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", VOICES[gender], *options, "-w", str(path), text],
                       check=True, capture_output=True)
        with wave.open(str(path), "rb") as f:
            rate = f.getframerate()
            audio = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    audio = audio.astype(np.float32) / 32768
    if rate != SAMPLE_RATE:  # espeak-ng writes 22.05 kHz
        common = gcd(rate, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // common, rate // common).astype(np.float32)
    noise = rng.standard_normal(len(audio), dtype=np.float32) * np.float32(rng.uniform(0.002, 0.006))
    return (np.clip(audio + noise, -1.0, 1.0) * 32767).astype(np.int16)
