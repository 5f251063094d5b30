"""The emotion labels of a training manifest: class counts, the balanced L_ER class weights
(``class_weights: balanced``), and the AED/AEC label statistics written beside the manifest."""

import json
import logging
import os
from collections import Counter

logger = logging.getLogger(__name__)


def write_label_statistics(hparams, tokenizer):
    """Share of KEEP/DELETE/CHANGE tokens, truncated AEC targets and WER of the training
    manifest, in ``label_statistics.json`` next to it (once)."""
    from m4ser_lobes.text.statistics import manifest_label_statistics

    out = os.path.join(os.path.dirname(os.path.abspath(hparams["train_annotation"])),
                       "label_statistics.json")
    if hparams["text_source"] == "hypothesis" and not os.path.exists(out):
        manifest_label_statistics([hparams["train_annotation"]], tokenizer,
                                  max_len=hparams["aec_max_len"], output_path=out)


def label_counts(manifest, field="emo"):
    """Label -> number of utterances in a SpeechBrain JSON manifest.

    Example
    -------
    >>> path = getfixture("tmp_path") / "train.json"
    >>> _ = path.write_text(json.dumps({"a": {"emo": "joy"}, "b": {"emo": "joy"}, "c": {"emo": "fear"}}))
    >>> label_counts(path)
    {'fear': 1, 'joy': 2}
    """
    with open(manifest, encoding="utf-8") as fin:
        counts = Counter(entry[field] for entry in json.load(fin).values())
    return dict(sorted(counts.items()))


def balanced_class_weights(counts):
    """Inverse-frequency class weights ``N / (C * n_c)`` (scikit-learn's ``"balanced"``).

    A class absent from training (``n_c = 0``) weighs as if seen once (never used, finite).

    Example
    -------
    >>> balanced_class_weights([6, 2, 2, 2])
    [0.5, 1.5, 1.5, 1.5]
    """
    total, num_classes = sum(counts), len(counts)
    return [total / (num_classes * max(n, 1)) for n in counts]


def class_weights_of(hparams, label_encoder):
    """The ``[C]`` L_ER weights for ``class_weights: balanced``, or None for the plain loss."""
    import torch

    if hparams.get("class_weights") is None:
        return None
    counts = label_counts(hparams["train_annotation"])
    names = [label_encoder.decode_ndim(i) for i in range(len(label_encoder))]
    weights = balanced_class_weights([counts.get(name, 0) for name in names])
    logger.info("L_ER class weights (balanced, from %s): %s", hparams["train_annotation"],
                ", ".join(f"{n} {w:.3f}" for n, w in zip(names, weights)))
    return torch.tensor(weights, dtype=torch.float32)
