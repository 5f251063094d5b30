"""benchmarks/table5.py: every Table V figure of every row, on tiny encoders, in one call."""

import json
import math
from pathlib import Path

import pytest

from m4ser_lobes.testing import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "table5.py"


def import_benchmark(path):
    """``benchmarks/<name>.py`` as a module."""
    return load_script(path, f"benchmark_{path.stem}")
ROWS = ("baseline", "msr_mir", "gan_lcl", "m4ser")


@pytest.fixture(scope="module")
def table5():
    return import_benchmark(SCRIPT)


@pytest.fixture(scope="module")
def figures(table5, tmp_path_factory):
    out = tmp_path_factory.mktemp("table5") / "table5.json"
    table5.main(["--size", "tiny", "--quick", "--rounds", "1", "--batch", "2", "--seconds", "1",
                 "--json", str(out)])
    return json.loads(out.read_text())


def positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_row_has_every_figure(figures):
    assert set(figures["rows"]) == set(ROWS)
    for name in ROWS:
        row = figures["rows"][name]
        for key in ("train_step_s", "inference_s_per_utterance", "inference_batch_s_per_utterance",
                    "params_m"):
            assert positive(row[key]), (name, key, row[key])
        for phase in ("train", "inference"):
            assert positive(row["flops"][phase]["total"]), (name, phase)
            assert positive(row["flops"][phase]["per_utterance"]), (name, phase)
        assert row["peak_memory_mb"] is None  # CPU: no allocator statistics (see notes)
    assert any("peak_memory_mb is None on CPU" in note for note in figures["notes"])


def test_training_flops_grow_with_each_row(figures):
    flops = [figures["rows"][name]["flops"]["train"]["total"] for name in ROWS]
    assert flops[0] < flops[1] <= flops[2] <= flops[3], flops
    params = [figures["rows"][name]["params_m"] for name in ROWS]
    assert params[0] < params[1] < params[2] < params[3], params


def test_inference_is_the_exported_path(figures):
    """No AED/AEC at inference: the last two rows run exactly the FLOPs of + MSR & MIR."""
    rows = figures["rows"]
    inference = [rows[name]["flops"]["inference"]["total"] for name in ROWS]
    assert inference[0] < inference[1] == inference[2] == inference[3], inference


def test_ratios_padding_and_loader(figures):
    for stage, ratio in figures["ratios"].items():
        assert all(positive(v) for v in ratio.values()), stage
    assert figures["ratios"]["M4SER / baseline"]["train_flops"] > 1
    assert figures["paper_ratios"]["M4SER / baseline"]["train_time"] == pytest.approx(21.5 / 9.6)
    padding = figures["padding_fraction"]
    assert 0 < padding["bucketed"] < padding["random"] < 1  # the recipe's batches pad less
    assert 0 < padding["bucketed_by_seconds"] < padding["random"]
    assert padding["durations"]["mean_s"] == pytest.approx(4.55, rel=0.05)
    assert positive(figures["loader_utterances_per_s"])


def test_bad_arguments_say_what_to_do(table5):
    with pytest.raises(SystemExit):
        table5.parse_args(["--profile", "nope"])
    with pytest.raises(SystemExit):
        table5.parse_args(["--precision", "fp16", "--device", "cpu"])


def test_help_prints_the_usage(table5, capsys):
    with pytest.raises(SystemExit) as exit_:
        table5.parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "python benchmarks/table5.py [--size tiny|base]" in out and "--profile" in out


def test_profile_of_one_row(table5, capsys):
    figures = table5.main(["--size", "tiny", "--profile", "baseline", "--steps", "1", "--top", "3",
                           "--batch", "2", "--seconds", "1"])
    row = figures["rows"]["baseline"]
    assert positive(row["wall_s_per_step"]) and len(row["top_self_cpu"]) == 3
    assert any(key.startswith("phase:") for key in row["ranges_ms_per_step"])
    assert set(row["optimizer_step_ms"]) == {"per-tensor", "foreach", "fused"}
    assert "== baseline" in capsys.readouterr().out
