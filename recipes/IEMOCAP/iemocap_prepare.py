#!/usr/bin/env python3
"""IEMOCAP data preparation (5-fold leave-one-session-out manifests), as SpeechBrain recipes have it.

    python recipes/IEMOCAP/iemocap_prepare.py /data/IEMOCAP_full_release results/prepared [--help]

The code (and its documentation: the corpus layout, labels, counts and protocol) is
:mod:`m4ser_lobes.corpora.iemocap`; ``train.py`` calls it itself, so this script is only needed to
prepare manifests ahead of the ASR step.
"""

from m4ser_lobes.corpora.iemocap import main, prepare_iemocap  # noqa: F401 (SpeechBrain's name)

if __name__ == "__main__":
    main()
