"""Atomic file writes (a reader never sees a half-written manifest, cache or export) and YAML values."""

import json
import os
import tempfile
from pathlib import Path


def current_umask():
    """The process umask, read without changing it (``/proc/self/status`` on Linux).

    ``os.umask`` can only be read by setting it, which for a moment gives files created by
    other threads the temporary mask; it is the fallback where ``/proc`` has no ``Umask``.

    Example
    -------
    >>> old = os.umask(0o027)
    >>> oct(current_umask())
    '0o27'
    >>> _ = os.umask(old)
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fin:
            for line in fin:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets the mode an ordinary ``open(path, "w")`` gives, ``0o666`` less the umask
    (``tempfile.mkstemp`` creates owner-only files).

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
            os.fchmod(fout.fileno(), 0o666 & ~current_umask())
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


#: ``!apply:`` functions that :func:`load_hyperpyyaml_values` evaluates: pure functions of plain
#: values that name files and folders (nothing else is ever called while reading values).
PURE_FUNCTIONS = {
    "os.path.join": "os.path:join",
    "m4ser_lobes.utils.identity.keyed_folder": "m4ser_lobes.utils.identity:keyed_folder",
    "m4ser_lobes.utils.identity.file_digest": "m4ser_lobes.utils.identity:file_digest",
}


class _Deferred:
    """A pure ``!apply:`` call, made once the document is loaded: ruamel fills lists and
    mappings (``!ref`` aliases included) only after their parent node is constructed."""

    def __init__(self, function, args, kwargs):
        self.function, self.args, self.kwargs = function, args, kwargs

    def __call__(self):
        args = [_resolve(a) for a in self.args]
        if self.function is os.path.join and None in args:
            return None  # a path under an object the reader does not build
        return self.function(*args, **{k: _resolve(v) for k, v in self.kwargs.items()})


def _resolve(value):
    if isinstance(value, _Deferred):
        return value()
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _call_pure(loader, suffix, node):
    import importlib

    import ruamel.yaml

    if suffix not in PURE_FUNCTIONS:
        return None
    module, name = PURE_FUNCTIONS[suffix].split(":")
    function = getattr(importlib.import_module(module), name)
    if isinstance(node, ruamel.yaml.MappingNode):
        return _Deferred(function, (), loader.construct_mapping(node, deep=True))
    if isinstance(node, ruamel.yaml.SequenceNode):
        return _Deferred(function, loader.construct_sequence(node, deep=True), {})
    return _Deferred(function, (loader.construct_scalar(node),), {})


def load_hyperpyyaml_values(stream):
    """Plain values of a resolved HyperPyYAML document, read as ``load_hyperpyyaml`` reads them.

    For reading a setting (an output folder, an ASR model id, a whole configuration to check)
    without building any model. It uses HyperPyYAML's own loader (YAML 1.2: ``no`` and ``off``
    are strings, ``1e-3`` a number), not PyYAML's YAML 1.1, so a value read here is the value
    the built objects receive. Object tags (``!new:``, ``!apply:``, ``!ref``...) read as None,
    except the path functions of :data:`PURE_FUNCTIONS`, which are evaluated; keys starting with
    ``__`` are dropped.

    Example
    -------
    >>> load_hyperpyyaml_values("use_gan: no\\nlr: 1e-3\\n__seed: 1\\nm: !new:torch.nn.Linear [2, 2]\\n"
    ...                         "p: !apply:os.path.join [a, b.json]\\nx: !apply:os.system [ls]\\n")
    {'use_gan': 'no', 'lr': 0.001, 'm': None, 'p': 'a/b.json', 'x': None}
    """
    import ruamel.yaml
    import yaml

    class TagsAsNone(ruamel.yaml.Loader):
        # Own table: load_hyperpyyaml registers its `!new:`/`!apply:` builders on the parent.
        yaml_multi_constructors = {}

    TagsAsNone.add_multi_constructor("!apply:", _call_pure)
    TagsAsNone.add_multi_constructor("!", lambda loader, suffix, node: None)
    values = yaml.load(stream, Loader=TagsAsNone) or {}
    return {k: _resolve(v) for k, v in values.items() if not str(k).startswith("__")}
