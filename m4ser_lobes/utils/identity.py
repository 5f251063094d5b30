"""The one way this project recognises finished work and refuses changed settings.

Every piece of work that is kept on disk and reused (a folder of prepared manifests, a training
run, a run inside a study or a grid) is identified by a plain JSON-ready dict, its **identity**:
the options and the data that decide what the work produces. The folder that holds the work holds
``identity.json``::

    {"digest": "<sha1 of the identity>", "identity": {...}, "state": "done" | "started",
     "history": [...]}

* :func:`keyed_folder` names a folder after an identity (``<root>/<digest>``): work done with
  other options lands elsewhere and never overwrites (prepared manifests: two seeds or
  validation modes never share a folder).
* :func:`is_done` / :func:`mark_done` skip work already finished with the same identity.
* :func:`claim` is what a run does before it trains: compare its identity with the one recorded
  in the folder. Nothing recorded, or a record without any work behind it (a run that failed
  before its first checkpoint): the folder is the run's. The same identity: resume. Keys listed
  as ``continuable`` may change (raising ``number_of_epochs`` continues a finished run, as
  SpeechBrain users do); the change is recorded in ``history``. Anything else is refused with
  the list of differences (:class:`IdentityConflict`, one line) unless ``overwrite``, which
  moves the old folder aside.

Example
-------
>>> folder = getfixture("tmp_path") / "run"
>>> claim(folder, {"lr": 0.1, "epochs": 2}, holds_work=lambda f: False).status
'new'
>>> claim(folder, {"lr": 0.1, "epochs": 2}, holds_work=lambda f: True).status
'same'
>>> claim(folder, {"lr": 0.1, "epochs": 3}, continuable=("epochs",), holds_work=lambda f: True).status
'continued'
>>> claim(folder, {"lr": 0.2, "epochs": 3}, holds_work=lambda f: True)
Traceback (most recent call last):
...
m4ser_lobes.utils.identity.IdentityConflict: ... holds work with other settings (lr: 0.1 -> 0.2)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

from m4ser_lobes.utils.fileio import atomic_write_json

IDENTITY_FILE = "identity.json"
logger = logging.getLogger(__name__)


class IdentityConflict(ValueError):
    """A folder holds work made with other settings; the message is one line."""


class Claim(NamedTuple):
    """What :func:`claim` decided: ``status`` is ``new``, ``same``, ``continued`` or ``replaced``."""

    status: str
    changes: tuple = ()


def canonical(obj):
    """``obj`` as plain JSON values (tuples as lists, keys as strings).

    Example
    -------
    >>> canonical({"a": (1, 2), 3: None})
    {'a': [1, 2], '3': None}
    """
    return json.loads(json.dumps(obj, default=str))


def digest(obj, length=12):
    """Short SHA-1 of the canonical JSON of ``obj`` (sorted keys).

    Example
    -------
    >>> digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})
    True
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def file_digest(path):
    """SHA-1 of a file's content (None for None; ``'missing:<path>'`` when absent).

    Example
    -------
    >>> path = getfixture("tmp_path") / "a.json"
    >>> _ = path.write_text("{}")
    >>> file_digest(path), file_digest(None)
    ('bf21a9e8fbc5a3846fb05b4fa0859e0917b2202f', None)
    """
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return f"missing:{path.resolve()}"
    sha1 = hashlib.sha1()
    with open(path, "rb") as fin:
        for block in iter(lambda: fin.read(1 << 20), b""):
            sha1.update(block)
    return sha1.hexdigest()


def keyed_folder(root, **identity):
    """``<root>/<digest(identity)>``: the folder of the work that ``identity`` describes.

    Example
    -------
    >>> a = keyed_folder("results/prepared", seed=1, valid_ratio=0.1)
    >>> a == keyed_folder("results/prepared", valid_ratio=0.1, seed=1), a == keyed_folder("results/prepared", seed=2, valid_ratio=0.1)
    (True, False)
    """
    return str(Path(root) / digest(canonical(identity)))


def read(folder):
    """The record in ``<folder>/identity.json``, or None.

    A record that cannot be read (truncated by a crash, edited by hand) is reported and treated
    as absent: the next :func:`claim` then sees the work but not its identity.
    """
    path = Path(folder) / IDENTITY_FILE
    try:
        with open(path, encoding="utf-8") as fin:
            record = json.load(fin)
        record["identity"]  # noqa: B018 (the key a record must have)
        return record
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        logger.warning("%s is unreadable; it is ignored (delete it, or rerun with "
                       "--overwrite=True to start this run afresh)", path)
        return None


def write(folder, identity, state, history=()):
    """Write ``<folder>/identity.json`` atomically."""
    identity = canonical(identity)
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(folder) / IDENTITY_FILE, {
        "digest": digest(identity), "identity": identity, "state": state,
        "history": list(history),
    })


def is_done(folder, identity):
    """Whether ``folder`` holds finished work with exactly ``identity``.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> is_done(folder, {"seed": 1})
    False
    >>> mark_done(folder, {"seed": 1}); is_done(folder, {"seed": 1}), is_done(folder, {"seed": 2})
    (True, False)
    """
    record = read(folder)
    return (record is not None and record.get("state") == "done"
            and record["identity"] == canonical(identity))


def mark_done(folder, identity):
    """Record that ``folder`` holds finished work with ``identity`` (written last)."""
    write(folder, identity, "done")


def differences(old, new):
    """``key: old -> new`` for every key that differs (absent keys shown as ``<absent>``).

    Example
    -------
    >>> differences({"use_gan": True, "lr": 0.1}, {"use_gan": False, "lr": 0.1})
    ['use_gan: True -> False']
    """
    absent = "<absent>"
    return [f"{k}: {old.get(k, absent)} -> {new.get(k, absent)}"
            for k in sorted(set(old) | set(new)) if old.get(k, absent) != new.get(k, absent)]


def move_aside(folder):
    """Move ``folder`` to a hidden sibling ``.<name>.replaced-<time>``; returns the new path."""
    folder = Path(folder)
    target = folder.with_name(f".{folder.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(folder, target)
    return target


def claim(folder, identity, *, holds_work: Callable, continuable=(), overwrite=False):
    """Make ``folder`` the home of the work ``identity`` describes, or refuse.

    Arguments
    ---------
    folder : path
        The work's folder (created when missing).
    identity : dict
        What decides the work's results (JSON-ready values).
    holds_work : callable
        ``folder -> bool``: whether the folder holds work worth protecting (checkpoints, results).
        A recorded identity without work behind it is replaced silently.
    continuable : tuple of str
        Keys that may change while the work goes on (``number_of_epochs``).
    overwrite : bool
        Move a conflicting folder aside (never deleted) instead of refusing.

    Returns
    -------
    Claim

    Raises
    ------
    IdentityConflict
        The folder holds work with another identity (one line, the differences and both fixes).
    """
    folder = Path(folder)
    identity = canonical(identity)
    record = read(folder)
    work = folder.is_dir() and holds_work(folder)
    if record is None and not work:
        write(folder, identity, "started")
        return Claim("new")
    if record is None:
        conflict = f"{folder} holds work whose settings were not recorded"
        changes = []
    else:
        changes = differences(record["identity"], identity)
        if not changes:
            return Claim("same")
        if not work:  # recorded, but nothing was made under it: the folder is free
            write(folder, identity, "started")
            return Claim("new")
        changed = {line.split(":", 1)[0] for line in changes}
        if changed <= set(continuable):
            history = record.get("history", []) + [{"time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                     "continued": changes}]
            write(folder, identity, record.get("state", "started"), history)
            return Claim("continued", tuple(changes))
        conflict = f"{folder} holds work with other settings (" + "; ".join(changes) + ")"
    if not overwrite:
        raise IdentityConflict(conflict)
    moved = move_aside(folder)
    logger.warning("%s; moved it to %s (delete it when no longer needed)", conflict, moved)
    write(folder, identity, "started")
    return Claim("replaced", tuple(changes))
