"""Model folders are data, and exports survive kills (issue 15), on the tiny model of ``tiny_m4ser``.

A tampered export (a local folder or a Hub repo) or training YAML is refused before HyperPyYAML
runs any of it (``m4ser_lobes.inference.safety``); a killed export's staging folder is removed by
the next export of the same destination (``m4ser_lobes.inference.folder``; the publishing swap
itself, with kills injected between its steps: ``tests/unit/inference/test_export.py``).
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from test_inference import manifest_entries

from m4ser_lobes.inference import export
from m4ser_lobes.inference.classifier import M4SERClassifier


def test_a_killed_export_is_cleaned_up_by_the_next_export(tiny_m4ser, tmp_path):
    """SIGKILL while the staging folder is written: the next export of --out removes it."""
    out = tmp_path / "m4ser"
    argv = ["--checkpoint", str(tiny_m4ser.run), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "m4ser_lobes.inference.export", *argv], env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".m4ser.tmp-*")) and time.monotonic() < deadline:
        assert process.poll() is None, "the export ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    (left,) = tmp_path.glob(".m4ser.tmp-*")
    assert f"-{process.pid}-" in left.name and not out.exists()
    assert export.main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m4ser"], "nothing left beside --out"
    assert (out / "model.ckpt").is_file()


# ------------------------------------------------------------------------------ model folders are data
def _payloads(tmp_path, marker):
    """(tag named in the refusal, how the YAML is tampered) for payloads that would create marker."""
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'x: !apply:os.system ["touch {marker}"]\n')
    system = f'__pwned: !apply:os.system ["touch {marker}"]\n'
    return [
        ("!apply:os.system", lambda text: text + system),
        ("!new:subprocess.Popen", lambda text: text + f'w: !new:subprocess.Popen [["touch", "{marker}"]]\n'),
        # called as soon as a correction is asked for (AED/AEC are built from it)
        ("!name:builtins.eval", lambda text: text.replace(
            "aed_head: !name:m4ser_lobes.heads.AEDHead\n    d_model: !ref <d_model>\n",
            f"aed_head: !name:builtins.eval [\"__import__('os').system('touch {marker}')\"]\n")),
        ("python/object/apply:os.system",
         lambda text: text + f'x: !!python/object/apply:os.system ["touch {marker}"]\n'),
        (f"!include:{evil}", lambda text: text + f"extra: !include:{evil}\n"),
        # allowed tags, but not the packaged node: the weights hook swapped for another callable
        ("differs from the packaged", lambda text: text.replace(
            "model: !name:m4ser_lobes.inference.folder.load_inference_weights",
            "model: !name:m4ser_lobes.heads.AEDHead")),
    ]


def test_a_tampered_export_is_refused_before_anything_runs(tiny_m4ser, tmp_path, capsys):
    from m4ser_lobes.inference import classify
    from m4ser_lobes.inference.safety import UnsafeYAMLError

    folder = tmp_path / "export"
    shutil.copytree(tiny_m4ser.export, folder)
    yaml_file = folder / "hyperparams.yaml"
    clean = yaml_file.read_text()
    marker = tmp_path / "pwned"
    clip = manifest_entries(tiny_m4ser)[0][1]["wav"]
    for tag, tamper in _payloads(tmp_path, marker):
        yaml_file.write_text(tamper(clean))
        with pytest.raises(UnsafeYAMLError) as err:
            M4SERClassifier.from_hparams(str(folder), run_opts={"device": "cpu"})
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"{yaml_file}: refused") and tag in message
        # m4ser-classify: one error line, exit status 2, no output
        out = tmp_path / "out.csv"
        argv = ["--model", str(folder), clip, "--output", str(out), "--no-progress"]
        assert classify.main(argv) == 2
        (error,) = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]
        assert tag in error and not out.exists()
        assert not marker.exists(), f"{tag}: the payload ran"
    # ... also when it comes from the Hub (a repo id, here from an offline cache)
    from speechbrain.utils.fetching import FetchConfig

    yaml_file.write_text(_payloads(tmp_path, marker)[0][1](clean))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--m4ser--tampered"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    config = FetchConfig(huggingface_cache_dir=str(tmp_path / "hub"), allow_network=False)
    with pytest.raises(UnsafeYAMLError, match="!apply:os.system"):
        M4SERClassifier.from_hparams("m4ser/tampered", fetch_config=config)
    assert not marker.exists()
    # the payload is real: trusting the folder runs it
    M4SERClassifier.from_hparams(str(folder), run_opts={"device": "cpu"}, trust_code=True)
    assert marker.exists()
    # and the clean folder loads
    yaml_file.write_text(clean)
    assert M4SERClassifier.from_hparams(str(folder), run_opts={"device": "cpu"}).classes


def test_export_refuses_a_tampered_training_yaml(tiny_m4ser, tmp_path, capsys):
    marker = tmp_path / "pwned"
    tampered = tmp_path / "hyperparams.yaml"
    payload = f'__pwned: !apply:os.system ["touch {marker}"]\n'
    tampered.write_text((tiny_m4ser.run / "hyperparams.yaml").read_text() + payload)
    out = tmp_path / "out"
    argv = ["--checkpoint", str(tiny_m4ser.run), "--out", str(out), "--hparams", str(tampered)]
    assert export.main(argv) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]
    assert f"{tampered}: refused" in error and "!apply:os.system" in error and "--trust-code" in error
    assert not marker.exists() and not out.exists()
    # the payload is real: --trust-code runs it
    assert export.main(argv + ["--trust-code", "--no-verify"]) == 0
    assert marker.exists()
