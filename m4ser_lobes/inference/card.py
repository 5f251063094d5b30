"""The model card (``README.md``) of an export and what it says about the training data.

The card is the template ``m4ser_lobes/inference/model_card.md`` (package data) with its
``$name`` fields filled by :func:`model_card` (``string.Template``). Neither the card nor
:func:`training_data` ever holds a local path: a local folder is named by its last component only
(:func:`public_name`), so an export can be published as is.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

from m4ser_lobes import DISTRIBUTION, install_command

#: The model card template (installed with the package: ``setup.py`` package_data).
MODEL_CARD = Path(__file__).with_name("model_card.md")


def public_name(value):
    """A name that can be published: a local path becomes its last component; ids stay.

    Example
    -------
    >>> public_name("/home/me/models/tiny-whisper/"), public_name("facebook/hubert-base-ls960")
    ('tiny-whisper', 'facebook/hubert-base-ls960')
    >>> public_name(None)
    '?'
    """
    if value is None:
        return "?"
    text = str(value)
    if os.path.isabs(text) or text.startswith(("./", "../", "~")) or os.path.exists(text):
        return Path(text.rstrip("/\\")).name or text
    return text


def _corpus_name(hparams):
    folder = str(hparams.get("data_folder") or "")
    for name in ("IEMOCAP", "MELD"):
        if name.lower() in folder.lower():
            return name
    return public_name(folder) if folder else "unknown"


def _manifest_size(path):
    """Number of utterances in a JSON manifest, None when it cannot be read."""
    if not path or not os.path.isfile(str(path)):
        return None
    try:
        with open(path, encoding="utf-8") as fin:
            entries = json.load(fin)
    except (OSError, ValueError):
        return None
    return len(entries) if isinstance(entries, dict) else None


def training_data(hparams):
    """What the model was trained on, from the training YAML and the files it names.

    Returns
    -------
    dict
        ``corpus``, ``data_folder`` (its last component), ``fold``, ``test_split``,
        ``validation``, ``text_source`` (``hypothesis``/``transcript``), ``hypotheses_model``
        and ``hypotheses_wer`` (from the hypothesis cache, when there is one), and
        ``num_train_utterances``/``num_valid_utterances``/``num_test_utterances`` (from the
        manifests, None when they are not readable where the export runs). No local paths.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "train.json").write_text('{"a": {}, "b": {}}')
    >>> _ = (tmp / "hyps.json").write_text('{"model": "openai/whisper-medium.en", "wer": 0.2}')
    >>> data = training_data({"data_folder": "/data/IEMOCAP_full_release", "fold": 2,
    ...                       "train_annotation": str(tmp / "train.json"),
    ...                       "hypotheses_file": str(tmp / "hyps.json")})
    >>> data["corpus"], data["test_split"], data["num_train_utterances"], data["hypotheses_model"]
    ('IEMOCAP', 'Session2', 2, 'openai/whisper-medium.en')
    """
    corpus = _corpus_name(hparams)
    fold = hparams.get("fold")
    if corpus == "IEMOCAP" and fold is not None:
        test_split = f"Session{fold}"
    else:
        test_split = hparams.get("test_split") or "test"
    text_source = hparams.get("text_source") or "hypothesis"
    model = wer = None
    cache = hparams.get("hypotheses_file")
    if text_source != "transcript" and cache and os.path.isfile(str(cache)):
        try:
            with open(cache, encoding="utf-8") as fin:
                data = json.load(fin)
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            model = public_name(data["model"]) if data.get("model") else None
            wer = data.get("wer") if isinstance(data.get("wer"), (int, float)) else None
    return {
        "corpus": corpus,
        "data_folder": public_name(hparams.get("data_folder")),
        "fold": fold,
        "test_split": test_split,
        "validation": hparams.get("validation"),
        "text_source": text_source,
        "hypotheses_model": model,
        "hypotheses_wer": wer,
        "num_train_utterances": _manifest_size(hparams.get("train_annotation")),
        "num_valid_utterances": _manifest_size(hparams.get("valid_annotation")),
        "num_test_utterances": _manifest_size(hparams.get("test_annotation")),
    }


#: What each metric of a card's results table means.
METRIC_NAMES = {
    "WA": "WA = accuracy",
    "ACC": "ACC = accuracy",
    "UA": "UA = mean per-class recall",
    "W-F1": "W-F1 = F1 weighted by class support",
}


def corpus_metrics(corpus):
    """The metrics a corpus reports, headline first (``Corpus.metrics``): MELD's ACC is not WA.

    Example
    -------
    >>> corpus_metrics("MELD"), corpus_metrics("IEMOCAP"), corpus_metrics("unknown")
    (('ACC', 'W-F1', 'UA'), ('WA', 'UA', 'W-F1'), ('WA', 'UA', 'W-F1'))
    """
    from m4ser_lobes.corpora import Corpus

    if corpus == "MELD":
        from m4ser_lobes.corpora.meld import MELD

        return MELD.metrics
    return Corpus.metrics  # IEMOCAP's, the default


def results_table(test_metrics, corpus, test_split):
    """The card's results: the corpus's metrics (:func:`corpus_metrics`) on its test split.

    Example
    -------
    >>> print(results_table({"WA": 62.5, "ACC": 62.5, "UA": 40.1, "W-F1": 60.2}, "MELD", "test"))
    | split | ACC (%) | W-F1 (%) | UA (%) |
    |---|---|---|---|
    | test (test) | 62.5 | 60.2 | 40.1 |
    <BLANKLINE>
    ACC = accuracy, W-F1 = F1 weighted by class support, UA = mean per-class recall; all metrics
    in `test_metrics.json`.
    """
    keys = corpus_metrics(corpus)
    return (
        "| split | " + " | ".join(f"{k} (%)" for k in keys) + " |\n"
        + "|---" * (len(keys) + 1) + "|\n"
        + f"| test ({test_split}) | " + " | ".join(str(test_metrics.get(k)) for k in keys)
        + " |\n\n" + ", ".join(METRIC_NAMES[k] for k in keys)
        + "; all metrics in `test_metrics.json`."
    )


def _text_summary(data):
    if data["text_source"] == "transcript":
        return "human transcripts (`text_source: transcript`)"
    if data["hypotheses_model"] is None:
        return "ASR hypotheses (`text_source: hypothesis`; the hypothesis cache was not found)"
    wer = data["hypotheses_wer"]
    wer = f", WER {100 * wer:.2f} %" if wer is not None else ""
    return f"ASR hypotheses of `{data['hypotheses_model']}`{wer} (`text_source: hypothesis`)"


def _count(value):
    return "unknown" if value is None else str(value)


def render_model_card(fields, template=MODEL_CARD):
    """Fill the model card template's ``$name`` fields (``string.Template``).

    Arguments
    ---------
    fields : dict
        A value for every ``$name`` of the template (:func:`model_card` computes them).
    template : str or Path
        Default :data:`MODEL_CARD`.

    Raises
    ------
    KeyError
        The template names a field that ``fields`` lacks (the message names the template).

    Example
    -------
    >>> template = getfixture("tmp_path") / "card.md"
    >>> _ = template.write_text("# $corpus, fold $fold\\n")
    >>> render_model_card({"corpus": "IEMOCAP", "fold": 1}, template)
    '# IEMOCAP, fold 1\\n'
    >>> render_model_card({"corpus": "IEMOCAP"}, template)
    Traceback (most recent call last):
    ...
    KeyError: '.../card.md needs the field $fold'
    """
    text = Path(template).read_text(encoding="utf-8")
    try:
        return string.Template(text).substitute(fields)
    except KeyError as err:
        raise KeyError(f"{template} needs the field ${err.args[0]}") from None


def model_card(
    run,
    hparams,
    classes,
    asr_model,
    test_metrics,
    has_corrector,
    repo_id=None,
    asr_backend="transformers",
    data=None,
):
    """README.md of the export: the Hugging Face model card :data:`MODEL_CARD`, no local paths.

    Arguments
    ---------
    run : m4ser_lobes.inference.export.TrainingRun
        The exported run (checkpoint name, validation metrics, whether it is the selected checkpoint).
    hparams : dict
        The loaded training YAML.
    classes : list of str
        Class names in index order.
    asr_model : str
        The export's Whisper model: Hub id or local folder (bundled in ``asr/``).
    test_metrics : dict or None
        The run's ``test_metrics.json``.
    has_corrector : bool
        The export holds AED + AEC (the card then shows a correction).
    repo_id : str, optional
        Hub repo id for the snippets.
    asr_backend : str
    data : dict, optional
        :func:`training_data` of ``hparams``, when the caller has it already (the export also
        writes it to ``export_info.json``); computed here when None.

    Returns
    -------
    str
    """
    data = training_data(hparams) if data is None else data
    meta = run.meta
    metrics = corpus_metrics(data["corpus"])
    if test_metrics and run.is_best:
        results = results_table(test_metrics, data["corpus"], data["test_split"])
    else:
        results = "No test metrics were recorded for this checkpoint."
    correction = (
        'info = classifier.transcribe_file("speech.wav", correct=True)  # info.corrected\n'
        if has_corrector
        else ""
    )
    bundled = os.path.isdir(str(asr_model))
    asr_description = (
        f"the Whisper model bundled in `asr/` (`{public_name(asr_model)}`, {asr_backend})"
        if bundled
        else f"`{public_name(asr_model)}` ({asr_backend})"
    )
    fields = {
        "corpus": data["corpus"],
        "corpus_tag": data["corpus"].lower(),
        "data_name": data["data_folder"],
        "test_split": data["test_split"],
        "num_train": _count(data["num_train_utterances"]),
        "num_valid": _count(data["num_valid_utterances"]),
        "num_test": _count(data["num_test_utterances"]),
        "text": _text_summary(data),
        "speech_source": public_name(hparams.get("speech_encoder_source")),
        "text_source": public_name(hparams.get("text_encoder_source")),
        "classes": ", ".join(classes),
        "checkpoint": run.checkpoint.name,
        "valid_metrics": ", ".join(f"{k} {meta[k]}" for k in metrics if k in meta)
        or "not recorded",
        "distribution": DISTRIBUTION,
        "install": install_command(),
        "install_faster_whisper": install_command("faster-whisper"),
        "results": results,
        "source": repo_id or "<this folder or org/name>",
        "repo_id": repo_id or "org/name",
        "correction_line": correction,
        "asr_description": asr_description,
        "epochs": hparams.get("number_of_epochs", "?"),
        "experiment": hparams.get("experiment_name", "?"),
    }
    for key in (
        "fold",
        "validation",
        "seed",
        "d_model",
        "modalities",
        "use_msr",
        "use_mir",
        "use_aed",
        "use_aec",
        "use_gan",
        "use_lcl",
    ):
        fields[key] = hparams.get(key, "?")
    return render_model_card(fields)
