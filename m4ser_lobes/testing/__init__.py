"""Test support shipped with the package (as numpy.testing and torch.testing are): tiny random
Hugging Face models saved to disk (:mod:`.models`), look-alike corpora in IEMOCAP's and MELD's
exact on-disk formats (:mod:`.mini_iemocap`, :mod:`.mini_meld`) and the demos' scaffolding
(:mod:`.demo`). Nothing here is used by training or inference."""


def load_script(path, name=None):
    """A script file (``recipes/...``, ``benchmarks/...``) loaded as a module, for its tests.

    Example
    -------
    >>> path = getfixture("tmp_path") / "tool.py"
    >>> _ = path.write_text("ANSWER = 42\\n")
    >>> load_script(path).ANSWER
    42
    """
    import importlib.util
    from pathlib import Path

    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or f"script_{path.parent.name}_{path.stem}",
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sigkill(process, timeout=60):
    """SIGKILL a ``subprocess.Popen`` and reap it; returns its exit status (``-9``)."""
    import signal

    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=timeout)
