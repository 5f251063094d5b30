"""Synthesize the clear-English test clips of ``tests/data/speech/`` with espeak-ng.

    python tests/data/make_speech_clips.py          # rewrites tests/data/speech/*.wav + words.json

Each sentence of :data:`SENTENCES` is spoken by espeak-ng (``apt-get install espeak-ng``),
resampled to 16 kHz mono and written as 16-bit PCM ``<id>.wav``; ``words.json`` maps every id to
the words spoken (lower case, no punctuation), the reference for WER. The clips are committed:
the tests that read them (``tests/real_asr.py``) need neither espeak-ng nor this
script. espeak-ng's output depends on its version, so a rerun may change the bytes, not the words.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

OUT = Path(__file__).resolve().parent / "speech"
SAMPLE_RATE = 16000
#: id -> sentence; short, common words that a tiny Whisper transcribes reliably.
SENTENCES = {
    "weather": "the weather is nice today",
    "door": "please open the door",
    "happy": "i am very happy to see you",
    "mistake": "this is a terrible mistake",
    "thanks": "thank you for your help",
}


def synthesize(text, path, voice="en-us", words_per_minute=140):
    """Speak ``text`` with espeak-ng into a 16 kHz mono 16-bit wav ``path``."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng not found; install it with `apt-get install -y espeak-ng`")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text], check=True
        )
        audio, rate = sf.read(raw, dtype="float32", always_2d=True)
    audio = torch.from_numpy(audio.mean(axis=1))
    if rate != SAMPLE_RATE:
        audio = torchaudio.functional.resample(audio, rate, SAMPLE_RATE)
    audio = audio.numpy()
    peak = float(np.abs(audio).max())
    if peak > 0:
        audio = 0.9 * audio / peak
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for utt_id, text in SENTENCES.items():
        synthesize(text, OUT / f"{utt_id}.wav")
    (OUT / "words.json").write_text(json.dumps(SENTENCES, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(SENTENCES)} clips and words.json to {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
