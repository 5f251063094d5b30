#!/usr/bin/env python3
"""MELD data preparation (train / dev / test manifests; mp4 clips decoded once to 16 kHz wav).

    python recipes/MELD/meld_prepare.py /data/MELD.Raw results/meld_manifests \
        --audio-cache results/prepared/meld_audio16k [--help]

The code (and its documentation: the release layout, encodings, broken and mis-cut clips) is
:mod:`m4ser_lobes.corpora.meld`; ``train.py`` calls it itself.
"""

from m4ser_lobes.corpora.meld import main, prepare_meld  # noqa: F401 (SpeechBrain's name)

if __name__ == "__main__":
    main()
