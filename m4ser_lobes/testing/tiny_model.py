"""``hparams/m4ser.yaml`` at CPU size, for trying every command on the look-alike corpora.

``m4ser-mini-corpus model OUT_DIR`` saves a tiny random HuBERT and BERT under ``OUT_DIR/models/``
(:func:`m4ser_lobes.testing.demo.tiny_encoders`: two layers, width 64, nothing downloaded) and
writes ``OUT_DIR/m4ser_tiny.yaml``: the text of ``hparams/m4ser.yaml`` with the demos' sizes and
training values (:data:`m4ser_lobes.testing.demo.DEMO_SIZES`, ``DEMO_TRAINING``), those encoders
and ``number_of_epochs``; every changed line says so and keeps the paper's value beside it, every
other line is the paper configuration's. It is a model YAML like any other::

    python recipes/IEMOCAP/train.py OUT_DIR/m4ser_tiny.yaml --data_folder=... --hypotheses_file=...

(the corpus's data section still applies above it: ``hparams/meld.yaml`` sets MELD's Table I
``lr``, ``batch_size`` and ``number_of_epochs``, so give those on a MELD command line).

Tested in ``tests/unit/testing/test_spoken_corpus.py`` (the recipes plan it as it is).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from m4ser_lobes.utils.fileio import atomic_write_text

MODEL_YAML = "m4ser_tiny.yaml"
EXPERIMENT_NAME = "m4ser_tiny"


def tiny_words():
    """Whole words of the tiny BERT vocabulary: both look-alike corpora's (IEMOCAP's, MELD's cues)."""
    from m4ser_lobes.testing.mini_iemocap import corpus_words
    from m4ser_lobes.testing.mini_meld import CUE_WORDS

    return sorted(set(corpus_words()) | set(CUE_WORDS.values()))


def tiny_values(models_folder, epochs=1):
    """The keys of ``hparams/m4ser.yaml`` that :func:`write_tiny_model` changes, with their values
    (saves the tiny encoders under ``models_folder`` once)."""
    from m4ser_lobes.testing import demo

    return {
        "experiment_name": EXPERIMENT_NAME,
        **demo.tiny_encoders(Path(models_folder).resolve(), tiny_words()),
        **demo.DEMO_SIZES,
        "number_of_epochs": int(epochs),
        **demo.DEMO_TRAINING,
    }


def shrink_yaml(text, values, source="hparams/m4ser.yaml"):
    """``text`` with each top-level ``key: value`` line of ``values`` replaced, the old value kept
    in a comment; a key that is not one line of ``text`` raises ``KeyError``.

    Example
    -------
    >>> print(shrink_yaml("lr: 0.1   # Table I\\nnhead: 12\\n", {"lr": 0.5}, "m.yaml"), end="")
    lr: 0.5  # tiny (m.yaml: 0.1)
    nhead: 12
    """
    for key, value in values.items():
        pattern = re.compile(rf"^{re.escape(key)}:[ \t]*(?P<old>[^#\n]*?)[ \t]*(#[^\n]*)?$",
                             re.MULTILINE)
        found = list(pattern.finditer(text))
        if len(found) != 1 or not found[0]["old"]:
            raise KeyError(f"{source}: {key} is not a one-line top-level key; the tiny model "
                           "cannot set it")
        line = f"{key}: {json.dumps(value)}  # tiny ({source}: {found[0]['old']})"
        text = text[:found[0].start()] + line + text[found[0].end():]
    return text


def write_tiny_model(out_dir, epochs=1, hparams_file=None):
    """Save the tiny encoders and write ``out_dir/m4ser_tiny.yaml``; returns its path.

    Arguments
    ---------
    out_dir : str or Path
        Receives ``models/tiny-hubert/``, ``models/tiny-bert/`` and ``m4ser_tiny.yaml``.
    epochs : int
        ``number_of_epochs`` of the YAML.
    hparams_file : str or Path, optional
        The model YAML to shrink (default: the project's ``hparams/m4ser.yaml``).

    Returns
    -------
    Path
    """
    from m4ser_lobes.testing.demo import HPARAMS_FILE

    hparams_file = Path(hparams_file or HPARAMS_FILE)
    if not hparams_file.is_file():
        raise FileNotFoundError(f"{hparams_file}: no model YAML to shrink; pass --hparams "
                                "<the project's hparams/m4ser.yaml>")
    out = Path(out_dir).resolve()
    values = tiny_values(out / "models", epochs)
    source = "hparams/m4ser.yaml" if hparams_file == Path(HPARAMS_FILE) else str(hparams_file)
    header = (
        f"# {source} at CPU size, written by `m4ser-mini-corpus model "
        f"{out_dir}`:\n# tiny random HuBERT and BERT (models/: 2 layers, width 64) and the other "
        "lines marked\n# `tiny`; every other line is the paper configuration's. A model YAML "
        f"like any other:\n#   python recipes/IEMOCAP/train.py {out / MODEL_YAML} "
        "--data_folder=...\n"
    )
    text = shrink_yaml(hparams_file.read_text(encoding="utf-8"), values, source)
    path = out / MODEL_YAML
    atomic_write_text(path, header + text)
    return path
