"""What a newcomer reads (issue 16 §2): install instructions that work, help that explains every
option, a MELD model card in MELD's metrics, no misleading torchvision warning.

The model card of a trained export: ``tests/integration/test_inference.py``.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import m4ser_lobes
from m4ser_lobes.corpora import iemocap
from m4ser_lobes.inference import card
from m4ser_lobes.inference.export import locate_run
from m4ser_lobes.text import asr

REPO = Path(__file__).resolve().parents[3]
#: An install from a package index, which has no m4ser-speechbrain.
INDEX_INSTALL = re.compile(r"pip install (-U |--upgrade )?[\"']?m4ser-speechbrain")


def make_run(folder, metrics):
    """A run folder with one checkpoint whose ``CKPT.yaml`` holds ``metrics``."""
    ckpt = folder / "save" / "CKPT+1"
    ckpt.mkdir(parents=True)
    (folder / "hyperparams.yaml").write_text("selection_metric: W-F1\n")
    (folder / "save" / "label_encoder.txt").write_text("'neutral' => 0\n")
    (ckpt / "model.ckpt").write_bytes(b"weights")
    meta = "".join(f"{key}: {value}\n" for key, value in metrics.items())
    (ckpt / "CKPT.yaml").write_text(f"end-of-epoch: true\nunixtime: 1\n{meta}")
    return locate_run(folder)


def meld_card(tmp_path):
    run = make_run(tmp_path / "run", {"WA": 55.0, "ACC": 55.0, "UA": 30.0, "W-F1": 52.0})
    hparams = {"data_folder": "/data/MELD.Raw", "text_source": "transcript", "seed": 7}
    test = {"WA": 61.25, "ACC": 61.25, "UA": 33.5, "W-F1": 58.75}
    return card.model_card(run, hparams, ["neutral", "joy"], "openai/whisper-large-v2", test,
                           has_corrector=False)


# ------------------------------------------------------------------------------ install
def test_the_distribution_name_is_setups():
    assert f'name="{m4ser_lobes.DISTRIBUTION}"' in (REPO / "setup.py").read_text()
    extras = re.search(r"extras_require=\{(.*?)\n    \}", (REPO / "setup.py").read_text(),
                       re.DOTALL)
    assert '"faster-whisper":' in extras.group(1), "the extra the instructions name exists"


def test_nothing_tells_to_install_from_a_package_index():
    """README, docs, the model card template, every message and help of the package."""
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted((REPO / "m4ser_lobes").rglob("*.py")),
             *sorted((REPO / "m4ser_lobes").rglob("*.md"))]
    claims = [f"{path.relative_to(REPO)}:{number}"
              for path in files
              for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if INDEX_INSTALL.search(line)]
    assert claims == []


def test_the_model_card_says_how_to_install_from_source(tmp_path):
    text = meld_card(tmp_path)
    assert not INDEX_INSTALL.search(text)
    assert "pip install -e .\n" in text and 'pip install -e ".[faster-whisper]"' in text
    assert "`m4ser-speechbrain` plugin is on no package index" in text


def test_m4ser_asr_help_says_how_to_get_faster_whisper():
    text = asr.build_parser().format_help()
    assert not INDEX_INSTALL.search(" ".join(text.split()))
    assert 'pip install -e ".[faster-whisper]"' in " ".join(text.split())


# ------------------------------------------------------------------------------ the MELD card
def test_the_meld_card_heads_its_results_with_acc_and_w_f1(tmp_path):
    text = meld_card(tmp_path)
    assert "| split | ACC (%) | W-F1 (%) | UA (%) |" in text and "WA (%)" not in text
    assert "| test (test) | 61.25 | 58.75 | 33.5 |" in text
    assert "(validation: ACC 55.0, W-F1 52.0, UA 30.0)" in text


def test_the_iemocap_card_keeps_wa_and_ua(tmp_path):
    run = make_run(tmp_path / "run", {"WA": 70.0, "UA": 71.0, "W-F1": 69.0})
    hparams = {"data_folder": "/data/IEMOCAP_full_release", "fold": 3, "text_source": "transcript"}
    text = card.model_card(run, hparams, ["neu"], "openai/whisper-medium.en",
                           {"WA": 75.0, "UA": 76.0, "W-F1": 74.0}, has_corrector=False)
    assert "| split | WA (%) | UA (%) | W-F1 (%) |" in text
    assert "| test (Session3) | 75.0 | 76.0 | 74.0 |" in text


# ------------------------------------------------------------------------------ help
def test_m4ser_asr_usage_shows_that_a_model_is_required():
    usage = " ".join(asr.build_parser().format_usage().split())
    assert "(--model MODEL | --hparams HPARAMS)" in usage
    assert "[--model" not in usage and "[--hparams HPARAMS]" not in usage


def test_iemocap_prepare_help_explains_every_option():
    run = subprocess.run([sys.executable, str(REPO / "recipes" / "IEMOCAP" / "iemocap_prepare.py"),
                          "--help"], capture_output=True, text=True, check=True, cwd=REPO)
    assert run.stdout.startswith("usage: iemocap_prepare.py ")
    for action in iemocap.build_parser()._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"iemocap_prepare.py: {name} has no help"
        if action.default not in (None, False) and action.option_strings and name != "-h/--help":
            assert f"(default: {action.default})" in " ".join(run.stdout.split()), name


# ------------------------------------------------------------------------------ torchvision
SPEECHBRAIN_LOGGER = (
    "import logging; logging.basicConfig(level=logging.INFO)\n"
    "{first}"
    "from hyperpyyaml import load_hyperpyyaml\n"  # as a run builds hparams/m4ser.yaml
    "load_hyperpyyaml('l: !new:speechbrain.utils.train_logger.FileTrainLogger\\n"
    "  save_file: {log}\\n')\n"
)


def test_no_misleading_torchvision_warning(tmp_path):
    """SpeechBrain says "cannot save figures" without torchvision; every figure here is saved
    (matplotlib): the plugin drops that line, and only that one."""
    try:
        import torchvision  # noqa: F401

        pytest.skip("torchvision is installed: SpeechBrain does not warn")
    except ImportError:
        pass

    def stderr(first):
        code = SPEECHBRAIN_LOGGER.format(first=first, log=tmp_path / "log.txt")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stderr

    assert "torchvision is not available" in stderr(""), "SpeechBrain's own behaviour"
    assert "torchvision" not in stderr("import m4ser_lobes.experiment.run\n")
