"""What every corpus preparation shares (``recipes/IEMOCAP/iemocap_prepare.py``, MELD's).

A prep reads and validates the whole corpus before it writes anything, and skips work already
done. The pieces of that protocol that do not depend on the corpus live here:

* the skip when every output is there with the same options: the options are the folder's
  identity, recorded last in ``<save_folder>/identity.json`` by
  :mod:`m4ser_lobes.utils.identity`, the one mechanism runs and studies use too
  (:func:`load_if_done`, :func:`mark_done`);
* the SHA-1 of the hypothesis cache among those options, so that a changed cache makes the prep
  run again (:func:`hypothesis_options`);
* problems collected over the whole corpus and raised in one error that lists them
  (:func:`raise_problems`, :func:`short_list`).

Example
-------
>>> save = getfixture("tmp_path") / "prep"
>>> options = {"seed": 1}
>>> load_if_done(save, options, outputs=[save / "train.json"]) is None  # nothing there yet
True
>>> atomic_write_json(save / "train.json", {})
>>> mark_done(save, {"num_utterances": 0}, options)
>>> load_if_done(save, options, outputs=[save / "train.json"])
{'num_utterances': 0}
>>> load_if_done(save, {"seed": 2}, outputs=[save / "train.json"]) is None  # changed option
True
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from m4ser_lobes.utils import identity
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
#: What a prep does for an utterance without hypothesis: raise, or keep it with ``null``.
MISSING_HYPOTHESIS_POLICIES = ("error", "null")


class PrepError(RuntimeError):
    """The corpus on disk is not what the prep expects; the message says what to do."""


def short_list(items, n=5):
    """A short, readable list of the first ``n`` items.

    Example
    -------
    >>> short_list(["a", "b"]), short_list(range(8))
    ('a, b', '0, 1, 2, 3, 4 and 3 more')
    """
    items = list(items)
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def raise_problems(problems, corpus, fix, error=PrepError):
    """Raise one ``error`` that lists every problem found (the first 20), then the ``fix``.

    Arguments
    ---------
    problems : list of str
        One line each, naming the file; nothing is raised when empty.
    corpus : str
        Shown in the message (``"the IEMOCAP folder"``).
    fix : str
        What to do, one sentence without the final full stop.
    error : type
        The exception class (the prep's own :class:`PrepError` subclass).

    Example
    -------
    >>> raise_problems([], "IEMOCAP", "Re-extract it")
    >>> raise_problems(["a.wav: missing", "b.wav: empty"], "IEMOCAP", "Re-extract them")
    Traceback (most recent call last):
      ...
    m4ser_lobes.data.prep.PrepError: 2 problem(s) in the IEMOCAP folder:
      a.wav: missing
      b.wav: empty
    Re-extract them.
    """
    if problems:
        listed = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise error(f"{len(problems)} problem(s) in the {corpus} folder:\n  {listed}{more}\n{fix}.")


def hypothesis_options(hypotheses, without, error=PrepError):
    """The options that name the hypothesis cache: its absolute path and the SHA-1 of its content.

    Arguments
    ---------
    hypotheses : str, Path or None
        The cache (None: no hypotheses, both options None).
    without : str
        How to prepare without a cache, shown when it does not exist.
    error : type
        The exception class raised for a missing cache.

    Returns
    -------
    dict
        ``{"hypotheses": str or None, "hypotheses_sha1": str or None}``.

    Example
    -------
    >>> hypothesis_options(None, "pass hypotheses=None")
    {'hypotheses': None, 'hypotheses_sha1': None}
    >>> hypothesis_options("nope.json", "pass hypotheses=None")
    Traceback (most recent call last):
      ...
    m4ser_lobes.data.prep.PrepError: nope.json: hypothesis cache not found. Create it with ...
    """
    if not hypotheses:
        return {"hypotheses": None, "hypotheses_sha1": None}
    path = Path(hypotheses)
    if not path.is_file():
        raise error(f"{path}: hypothesis cache not found. Create it with "
                    f"`python -m m4ser_lobes.text.asr`, or {without}.")
    return {"hypotheses": str(path.resolve()), "hypotheses_sha1": identity.file_digest(path)}


def check_missing_hypotheses(missing, path, missing_hypothesis, message, error=PrepError):
    """Apply the missing-hypothesis policy: raise ``error(message)``, or warn (policy ``"null"``).

    Arguments
    ---------
    missing : list of str
        Utterance ids without hypothesis (nothing happens when empty).
    path : str or Path
        The hypothesis cache, named in the warning.
    missing_hypothesis : str
        One of :data:`MISSING_HYPOTHESIS_POLICIES`.
    message : str
        The error message (what is missing and what to do).
    error : type
        The exception class.

    Example
    -------
    >>> check_missing_hypotheses([], "h.json", "error", "unused")
    >>> check_missing_hypotheses(["u1"], "h.json", "null", "unused")  # logged, kept as null
    """
    if missing_hypothesis not in MISSING_HYPOTHESIS_POLICIES:
        raise ValueError(f"missing_hypothesis must be one of {MISSING_HYPOTHESIS_POLICIES}, "
                         f"got {missing_hypothesis!r}")
    if missing and missing_hypothesis == "error":
        raise error(message)
    if missing:
        logger.warning("%s: no hypothesis for %d utterances (%s); their hypothesis is null",
                       path, len(missing), short_list(missing))


def load_if_done(save_folder, options, outputs):
    """The summary of an earlier run with the same ``options``, or None when the prep must run.

    The earlier run counts when ``identity.json`` (written last) records ``options`` as done and
    :data:`SUMMARY_FILE` and every one of ``outputs`` exist.

    Arguments
    ---------
    save_folder : str or Path
        The prep's output folder.
    options : dict
        The options of this run (JSON-ready).
    outputs : iterable of Path
        The manifests the prep writes.

    Returns
    -------
    dict or None
    """
    save_folder = Path(save_folder)
    outputs = [save_folder / SUMMARY_FILE, *outputs]
    if not identity.is_done(save_folder, options) or not all(Path(p).is_file() for p in outputs):
        return None
    logger.info("%s: manifests already prepared with these options, skipping", save_folder)
    return json.loads((save_folder / SUMMARY_FILE).read_text(encoding="utf-8"))


def mark_done(save_folder, summary, options):
    """Write :data:`SUMMARY_FILE`, then the folder's identity (last: it marks completion)."""
    save_folder = Path(save_folder)
    atomic_write_json(save_folder / SUMMARY_FILE, summary)
    identity.mark_done(save_folder, options)
