"""What a run's text branch read: the ASR behind its hypotheses, recorded and checked.

A run's ``configuration.json`` holds an ``asr`` entry (:func:`asr_of_run`, called by
``m4ser_lobes.experiment.run.configuration_of``): the hypothesis cache's model, backend and WER
and its share of empty hypotheses (:func:`cache_summary`), and one line the reports print.
A run warns, one line each, when that model is not the paper's for its corpus
(``Corpus.paper_asr_model``: ``openai/whisper-medium.en`` for IEMOCAP, ``openai/whisper-large-v2``
for MELD; :func:`same_whisper` compares Hub ids, local folders and faster-whisper sizes) and when
more than :data:`MOSTLY_EMPTY` of its training hypotheses are empty.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from m4ser_lobes.text.hypotheses import load_cache
from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.transcribers import faster_whisper_model_name

logger = logging.getLogger(__name__)

#: Above this share of empty training hypotheses a run warns (the text branch reads nothing).
MOSTLY_EMPTY = 0.5

__all__ = ["MOSTLY_EMPTY", "asr_of_run", "cache_summary", "same_whisper"]


def cache_summary(cache_path, ids=None):
    """What made a hypothesis cache and how good it is, without its hypotheses.

    Arguments
    ---------
    cache_path : str or Path
    ids : iterable of str, optional
        Count the empty hypotheses of these utterances only (one absent from the cache counts
        as empty: its manifest entry gets none); default every hypothesis of the cache.

    Returns
    -------
    dict
        ``model``, ``backend`` (None when the cache does not say), ``wer`` (as recorded by
        ``m4ser-asr``), ``num_utterances`` (counted), ``num_empty`` and ``empty_share`` (of the
        hypotheses that normalise to nothing; None for no utterance).

    Example
    -------
    >>> p = getfixture("tmp_path") / "h.json"
    >>> _ = p.write_text('{"model": "openai/whisper-tiny.en", "wer": 0.5, '
    ...                  '"hypotheses": {"a": "Oh no!", "b": " ... ", "c": "fine"}}')
    >>> cache_summary(p)
    {'model': 'openai/whisper-tiny.en', 'backend': None, 'wer': 0.5, 'num_utterances': 3,
     'num_empty': 1, 'empty_share': 0.3333}
    >>> cache_summary(p, ids=["b", "gone"])["empty_share"]
    1.0
    """
    cache = load_cache(cache_path)
    hyps = cache["hypotheses"]
    ids = list(hyps) if ids is None else list(ids)
    empty = sum(not normalize_text(hyps.get(utt_id)) for utt_id in ids)
    wer = cache.get("wer")
    return {
        "model": cache.get("model"),
        "backend": cache.get("backend"),
        "wer": wer if isinstance(wer, (int, float)) and not isinstance(wer, bool) else None,
        "num_utterances": len(ids),
        "num_empty": empty,
        "empty_share": round(empty / len(ids), 4) if ids else None,
    }


def _whisper_size(model_id):
    """Whisper size of an id, folder or size: ``/m/faster-whisper-medium.en`` -> ``medium.en``."""
    name = Path(str(model_id).rstrip("/\\")).name.lower()
    for prefix in ("faster-", "whisper-"):
        name = name.removeprefix(prefix)
    return faster_whisper_model_name(name)


def same_whisper(model_id, paper_model):
    """Whether ``model_id`` (a Hub id, a local folder or a faster-whisper size) is ``paper_model``.

    Example
    -------
    >>> same_whisper("/models/faster-whisper-large-v2", "openai/whisper-large-v2")
    True
    >>> same_whisper("medium.en", "openai/whisper-medium.en"), same_whisper(None, "medium.en")
    (True, False)
    >>> same_whisper("distil-whisper/distil-medium.en", "openai/whisper-medium.en")
    False
    """
    return model_id is not None and _whisper_size(model_id) == _whisper_size(paper_model)


def _describe(record, paper):
    """``openai/whisper-tiny.en (transformers), WER 31.20 %, 2 of 40 hypotheses empty``."""
    model = record["model"] or "an unnamed ASR"
    made = f"{model} ({record['backend']})" if record["backend"] else model
    wer = "not recorded" if record["wer"] is None else f"{100 * record['wer']:.2f} %"
    parts = [made, f"WER {wer}"]
    if record["num_utterances"] is not None:
        parts.append(f"{record['num_empty']} of {record['num_utterances']} hypotheses empty")
    if paper and not same_whisper(record["model"], paper):
        parts.append(f"not the paper's {paper}")
    return ", ".join(parts)


def _train_empty(train_manifest):
    """(empty, total) hypotheses of a manifest, as the text branch reads them (null: empty)."""
    with open(train_manifest, encoding="utf-8") as fin:
        entries = json.load(fin)
    return sum(not normalize_text(e.get("hypothesis")) for e in entries.values()), len(entries)


def asr_of_run(values, train_manifest, corpus=None):
    """The ``asr`` entry of a run's ``configuration.json``; warns when it is not the paper's.

    The entry describes the whole cache (the same for every fold of an experiment); it is
    logged, and a warning (one line each) says when the cache's model is not the paper's for
    the corpus (``corpus.paper_asr_model``) or when more than :data:`MOSTLY_EMPTY` of the
    training manifest's hypotheses are empty.

    Arguments
    ---------
    values : dict
        The run's values: ``hypotheses_file`` (the cache), ``text_source`` and ``modalities``.
    train_manifest : str or Path
        The training manifest (its ``hypothesis`` fields are what the text branch reads).
    corpus : m4ser_lobes.corpora.Corpus, optional
        Its ``name``, ``data_file`` and ``paper_asr_model``.

    Returns
    -------
    dict or None
        :func:`cache_summary` of the cache (its fields None when there is no cache),
        ``paper_model`` and ``summary`` (one line, as the reports print it); None when no ASR
        text is read (``text_source: transcript`` or ``modalities: speech``).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "h.json").write_text('{"model": "openai/whisper-tiny.en", "hypotheses": '
    ...                                 '{"a": "", "b": "", "c": "yes"}}')
    >>> _ = (tmp / "train.json").write_text('{"a": {"hypothesis": ""}, "b": {"hypothesis": null}}')
    >>> values = {"hypotheses_file": str(tmp / "h.json"), "text_source": "hypothesis"}
    >>> asr_of_run(values, tmp / "train.json")["summary"]
    'openai/whisper-tiny.en, WER not recorded, 2 of 3 hypotheses empty'
    >>> asr_of_run({**values, "text_source": "transcript"}, tmp / "train.json") is None
    True
    """
    if values.get("text_source", "hypothesis") != "hypothesis" or \
            values.get("modalities") == "speech":
        return None
    hypotheses_file = values.get("hypotheses_file")
    name = getattr(corpus, "name", "the corpus")
    paper = getattr(corpus, "paper_asr_model", None)
    if hypotheses_file and Path(hypotheses_file).is_file():
        record = cache_summary(hypotheses_file)
    else:
        record = dict.fromkeys(("model", "backend", "wer", "num_utterances", "num_empty",
                                "empty_share"))
    record.update(paper_model=paper, summary=_describe(record, paper))
    logger.info("%s text branch: ASR hypotheses of %s", name, record["summary"])
    if paper and not same_whisper(record["model"], paper):
        logger.warning(
            "%s trains on hypotheses of %s (%s), not of the paper's %s: text-branch results are "
            "not comparable with the paper's (m4ser-asr --hparams hparams/%s makes its cache)",
            name, repr(record["model"]) if record["model"] else "an unnamed ASR",
            hypotheses_file, paper, Path(getattr(corpus, "data_file", "<corpus>.yaml")).name,
        )
    empty, total = _train_empty(train_manifest)
    if total and empty / total > MOSTLY_EMPTY:
        logger.warning(
            "%d of the %d training hypotheses in %s are empty (%.0f %%): the text branch reads "
            "almost nothing; check %s (m4ser-asr prints its WER) or train on human transcripts "
            "(--text_source=transcript --use_aed=False --use_aec=False)", empty, total,
            train_manifest, 100 * empty / total,
            hypotheses_file,
        )
    return record
