"""Atomic file writes: a reader never sees a half-written manifest, cache or export."""

import json
import os
import tempfile
from pathlib import Path


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "a" / "b.txt"
    >>> atomic_write_text(path, "hi")
    >>> path.read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fout:
            fout.write(text)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path, obj, indent=2):
    """Atomically write ``obj`` as JSON (UTF-8, keys in insertion order)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
