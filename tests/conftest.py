"""Shared pytest fixtures.

Session-scoped fixtures build expensive things once; tests must treat what they return as
read-only (copy or regenerate into ``tmp_path`` to break files on purpose).
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IEMOCAP_RECIPE = REPO / "recipes" / "IEMOCAP"


def import_iemocap_prepare():
    """Import ``recipes/IEMOCAP/iemocap_prepare.py`` the way the recipe does (from its folder)."""
    if str(IEMOCAP_RECIPE) not in sys.path:
        sys.path.insert(0, str(IEMOCAP_RECIPE))
    import iemocap_prepare

    return iemocap_prepare


# --------------------------------------------------------------------------- IEMOCAP look-alike
@pytest.fixture(scope="session")
def mini_iemocap(tmp_path_factory):
    """The synthetic IEMOCAP release (seed 0, 5 sessions x 4 dialogs x 10 kept utterances).

    Returns ``m4ser_lobes.corpora.mini_iemocap.MiniCorpus``: ``.root`` (the ``IEMOCAP_full_release``
    folder), ``.hypotheses`` (the ASR cache JSON) and ``.utterances`` (ground truth per id).
    """
    from m4ser_lobes.corpora.mini_iemocap import generate_iemocap

    return generate_iemocap(tmp_path_factory.mktemp("mini_iemocap"), seed=0)


@pytest.fixture(scope="session")
def mini_iemocap_manifests(mini_iemocap, tmp_path_factory):
    """Folder of ``fold<k>/{train,valid,test}.json`` prepared from :func:`mini_iemocap`."""
    prep = import_iemocap_prepare()
    save_folder = tmp_path_factory.mktemp("mini_iemocap_manifests")
    prep.prepare_iemocap(mini_iemocap.root, save_folder, hypotheses=mini_iemocap.hypotheses,
                         expected_utterances=None)
    return save_folder
