"""Atomic file writes (a reader never sees a half-written manifest, cache or export) and YAML values."""

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


def load_hyperpyyaml_values(stream):
    """Plain values of a resolved HyperPyYAML document, read as ``load_hyperpyyaml`` reads them.

    For reading a setting (an output folder, an ASR model id, a whole configuration to check)
    without building any model. It uses HyperPyYAML's own loader (YAML 1.2: ``no`` and ``off``
    are strings, ``1e-3`` a number), not PyYAML's YAML 1.1, so a value read here is the value
    the built objects receive. Object tags (``!new:``, ``!apply:``, ``!ref``...) read as None;
    keys starting with ``__`` are dropped.

    Example
    -------
    >>> load_hyperpyyaml_values("use_gan: no\\nlr: 1e-3\\n__seed: 1\\nm: !new:torch.nn.Linear [2, 2]\\n")
    {'use_gan': 'no', 'lr': 0.001, 'm': None}
    """
    import ruamel.yaml
    import yaml

    class TagsAsNone(ruamel.yaml.Loader):
        # Own table: load_hyperpyyaml registers its `!new:`/`!apply:` builders on the parent.
        yaml_multi_constructors = {}

    TagsAsNone.add_multi_constructor("!", lambda loader, suffix, node: None)
    values = yaml.load(stream, Loader=TagsAsNone) or {}
    return {k: v for k, v in values.items() if not str(k).startswith("__")}
