"""Project-wide pytest setup (tests and the package's doctests alike)."""

import os
import sys

# Tiny models on 2 cores run several times faster on one thread (no OpenMP spin-waiting, and no
# oversubscription when a test starts training subprocesses, which inherit this).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Give SpeechBrain's not-yet-imported lazy module redirects a ``__file__`` of None.

    After collection, Hypothesis's pytest plugin reads ``__file__`` of every module in
    ``sys.modules``. On a ``LazyModule`` (``speechbrain.k2_integration`` ...) that attribute
    lookup imports the target, and a missing optional dependency (k2, numba, spacy) raises
    ImportError: an INTERNALERROR of the whole session (seen intermittently). With ``__file__``
    set, the scan skips them and nothing is imported.
    """
    try:
        from speechbrain.utils.importutils import LazyModule
    except ImportError:
        return
    for module in list(sys.modules.values()):
        if isinstance(module, LazyModule) and module.lazy_module is None:
            vars(module).setdefault("__file__", None)
