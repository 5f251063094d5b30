"""Atomic writes (``m4ser_lobes.utils.fileio``): whole files, with the mode the umask says."""

import json
import os
import stat

import pytest

from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text, current_umask


@pytest.fixture
def umask():
    """Set the process umask for a test (restored afterwards)."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600),
                                        (0o000, 0o666)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    text, data = tmp_path / "out" / "metrics.txt", tmp_path / "out" / "metrics.json"
    atomic_write_text(text, "UA 70.1\n")
    atomic_write_json(data, {"UA": 70.1})
    for path in (text, data):
        assert stat.S_IMODE(path.stat().st_mode) == mode, (oct(mask), path.name)
    assert text.read_text() == "UA 70.1\n" and json.loads(data.read_text()) == {"UA": 70.1}
    # a rewrite replaces the file whole, same mode, no temporary file left beside it
    atomic_write_text(text, "UA 71.0\n")
    assert stat.S_IMODE(text.stat().st_mode) == mode
    assert sorted(p.name for p in text.parent.iterdir()) == ["metrics.json", "metrics.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"UA": 70.1})
    with pytest.raises(TypeError):
        atomic_write_text(path, object())  # fails while writing
    assert json.loads(path.read_text()) == {"UA": 70.1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
