"""Shared pytest fixtures.

Session-scoped fixtures build expensive things once; tests must treat what they return as
read-only (copy or regenerate into ``tmp_path`` to break files on purpose).
"""

from pathlib import Path

import m4ser_lobes.corpora.iemocap as _IEMOCAP_PREP
import pytest

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- IEMOCAP look-alike
@pytest.fixture(scope="session")
def mini_iemocap(tmp_path_factory):
    """The synthetic IEMOCAP release (seed 0, 5 sessions x 4 dialogs x 10 kept utterances).

    Returns ``m4ser_lobes.testing.mini_iemocap.MiniCorpus``: ``.root`` (the ``IEMOCAP_full_release``
    folder), ``.hypotheses`` (the ASR cache JSON) and ``.utterances`` (ground truth per id).
    """
    from m4ser_lobes.testing.mini_iemocap import generate_iemocap

    return generate_iemocap(tmp_path_factory.mktemp("mini_iemocap"), seed=0)


@pytest.fixture(scope="session")
def mini_iemocap_manifests(mini_iemocap, tmp_path_factory):
    """Folder of ``fold<k>/{train,valid,test}.json`` prepared from :func:`mini_iemocap`."""
    prep = _IEMOCAP_PREP
    save_folder = tmp_path_factory.mktemp("mini_iemocap_manifests")
    prep.prepare_iemocap(mini_iemocap.root, save_folder, hypotheses=mini_iemocap.hypotheses,
                         expected_utterances=None)
    return save_folder
