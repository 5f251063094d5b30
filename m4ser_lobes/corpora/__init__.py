"""The corpora M4SER is trained on: each module holds its data preparation and its :class:`Corpus`.

A :class:`Corpus` is what a run needs to know about its data: the YAML section applied to the
model YAML (``hparams/<corpus>.yaml``), the pydantic model that checks that section's keys, the
preparation and its arguments, and the metrics reported. ``m4ser_lobes.corpora.iemocap.IEMOCAP``
and ``m4ser_lobes.corpora.meld.MELD`` are the two; ``docs/design.md`` says how to add one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: The repository's ``hparams/`` folder, where the corpus files live beside the model YAML.
HPARAMS = Path(__file__).resolve().parents[2] / "hparams"


@dataclass(frozen=True)
class Corpus:
    """What a run needs to know about its corpus.

    Arguments
    ---------
    name : str
        Shown in logs and reports (``"IEMOCAP"``).
    data_file : Path
        The corpus's YAML section (data, protocol, its Table I column), applied to the model
        YAML below the command line.
    settings : type
        The pydantic model of the corpus keys (a subclass of ``pydantic.BaseModel``); fields
        with ``json_schema_extra={"fingerprint": False}`` are bookkeeping.
    prepare : callable
        The data preparation, called on the main process with ``prepare_kwargs(values)``.
    prepare_kwargs : callable
        ``values -> dict`` of keyword arguments for ``prepare``.
    metrics : tuple of str
        Test metrics logged at the end (keys of ``test_metrics.json``), the headline first.
    paper_asr_model : str, optional
        The Whisper model whose hypotheses the paper trains on for this corpus; a run on another
        ASR's hypotheses warns (:func:`m4ser_lobes.text.provenance.asr_of_run`). The corpus
        file's ``asr_model`` key names the same model for ``m4ser-asr --hparams``.
    """

    name: str
    data_file: Path
    settings: type
    prepare: Callable
    prepare_kwargs: Callable
    metrics: tuple = ("WA", "UA", "W-F1")
    paper_asr_model: str = None


def prepare_folders(values):
    """The arguments every corpus's ``prepare`` takes: ``data_folder``, ``save_folder``, ``hypotheses``.

    Example
    -------
    >>> prepare_folders({"data_folder": "/d", "prepare_folder": "/p", "hypotheses_file": None})
    {'data_folder': '/d', 'save_folder': '/p', 'hypotheses': None}
    """
    return {
        "data_folder": values["data_folder"],
        "save_folder": values["prepare_folder"],
        "hypotheses": values["hypotheses_file"],
    }
