"""WER and AED/AEC label statistics of a corpus (issue #3; docs/design.md §4).

WER is computed with jiwer on text normalised by :func:`m4ser_lobes.text.normalize.normalize_text`
(the same words the alignment and the text encoder see). Label statistics count the AED tags and
AEC targets that :func:`m4ser_lobes.text.alignment.align_transcripts` gives a corpus: the
training recipe writes them next to the manifests (:func:`manifest_label_statistics`).

Example
-------
>>> word_error_rate([("the cat", "The cat sat.")])
0.3333333333333333
"""

from __future__ import annotations

import json
from pathlib import Path

from m4ser_lobes.text.alignment import align_transcripts
from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.tags import IGNORE_INDEX, LABEL_NAMES
from m4ser_lobes.text.targets import DEFAULT_AEC_MAX_LEN
from m4ser_lobes.utils.fileio import atomic_write_json

__all__ = [
    "word_error_counts",
    "word_error_rate",
    "label_statistics",
    "format_label_statistics",
    "save_label_statistics",
    "manifest_label_statistics",
]


def word_error_counts(pairs):
    """Corpus word-error counts with jiwer on normalised text.

    Arguments
    ---------
    pairs : iterable of (str, str)
        (hypothesis, reference) pairs, raw text.

    Returns
    -------
    dict
        ``substitutions``, ``deletions``, ``insertions``, ``hits``, ``reference_words``,
        ``num_utterances`` and ``wer`` (errors / reference words; None without reference words).

    Example
    -------
    >>> c = word_error_counts([("the cat sat", "The cat sat!"), ("a dog", "the dog barked"), ("uh", "")])
    >>> c["substitutions"], c["deletions"], c["insertions"], c["reference_words"], round(c["wer"], 3)
    (1, 1, 1, 6, 0.5)
    """
    import jiwer

    hyps, refs = [], []
    for hyp, ref in pairs:
        hyps.append(normalize_text(hyp))
        refs.append(normalize_text(ref))
    counts = {"substitutions": 0, "deletions": 0, "insertions": 0, "hits": 0}
    if refs:
        out = jiwer.process_words(refs, hyps)
        counts = {key: int(getattr(out, key)) for key in counts}
    n_ref = counts["substitutions"] + counts["deletions"] + counts["hits"]
    errors = counts["substitutions"] + counts["deletions"] + counts["insertions"]
    counts.update(reference_words=n_ref, num_utterances=len(refs))
    counts["wer"] = errors / n_ref if n_ref else None
    return counts


def word_error_rate(pairs):
    """Corpus WER: the ``wer`` of :func:`word_error_counts` of the same ``pairs`` (float or None).

    Example
    -------
    >>> word_error_rate([("excuse me", "Excuse me."), ("i'm going", "I’m not going")])
    0.2
    """
    return word_error_counts(pairs)["wer"]


def label_statistics(pairs, tokenizer, max_len=DEFAULT_AEC_MAX_LEN, max_length=None):
    """Label shares, target counts and WER of a labelled corpus (docs/design.md §4).

    Token counts cover every position the AED loss sees (label != -100, so [CLS] included).

    Arguments
    ---------
    pairs : iterable of (str, str)
        (hypothesis, reference) pairs, raw text.
    tokenizer : transformers.PreTrainedTokenizerFast
    max_len : int
        AEC target cap; targets longer than this are counted as truncated.
    max_length : int, optional
        Hypothesis cap passed to :func:`align_transcripts`.

    Returns
    -------
    dict

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> s = label_statistics([("i know", "i know"), ("you", "yes you do")], tok)
    >>> s["keep"], s["delete"], s["change"], s["num_targets"], s["wer"]
    (3, 0, 2, 2, 0.4)
    """
    pairs = list(pairs)
    counts = [0] * len(LABEL_NAMES)  # one per AED tag
    num_targets = num_truncated = num_cut = target_tokens = 0
    for hyp, ref in pairs:
        alignment = align_transcripts(hyp, ref, tokenizer, max_length=max_length)
        for label in alignment.labels:
            if label != IGNORE_INDEX:
                counts[label] += 1
        num_targets += len(alignment.targets)
        num_truncated += sum(len(t) > max_len for t in alignment.targets.values())
        target_tokens += sum(len(t) for t in alignment.targets.values())
        num_cut += alignment.num_cut_targets
    total = sum(counts)
    stats = {"num_utterances": len(pairs), "num_tokens": total}
    for name, count in zip(LABEL_NAMES, counts):
        stats[name] = count
        stats[f"{name}_share"] = count / total if total else 0.0
    stats.update(
        num_targets=num_targets,
        mean_target_length=target_tokens / num_targets if num_targets else 0.0,
        max_len=max_len,
        num_truncated_targets=num_truncated,
        num_targets_cut_by_max_length=num_cut,
    )
    wer = word_error_counts(pairs)
    stats.update(
        wer=wer["wer"],
        reference_words=wer["reference_words"],
        substitutions=wer["substitutions"],
        deletions=wer["deletions"],
        insertions=wer["insertions"],
    )
    return stats


def format_label_statistics(stats):
    """A short human-readable table of :func:`label_statistics` output."""
    wer = "n/a" if stats.get("wer") is None else f"{100 * stats['wer']:.2f} %"
    lines = [
        f"utterances          {stats['num_utterances']}",
        f"tokens (AED)        {stats['num_tokens']}",
    ]
    lines += [
        f"  {name:<17} {stats[name]:>8}  {100 * stats[name + '_share']:6.2f} %"
        for name in LABEL_NAMES
    ]
    lines += [
        f"AEC targets         {stats['num_targets']}"
        + f" (mean length {stats['mean_target_length']:.2f})",
        f"  longer than {stats['max_len']:<4}  {stats['num_truncated_targets']}",
        f"corpus WER          {wer}",
    ]
    return "\n".join(lines)


def save_label_statistics(stats, path, verbose=True):
    """Save :func:`label_statistics` output as JSON (atomically) and print a short table.

    Arguments
    ---------
    stats : dict
    path : str or Path
    verbose : bool
        Print the table.

    Returns
    -------
    str
        The table.
    """
    atomic_write_json(path, stats)
    table = format_label_statistics(stats)
    if verbose:
        print(f"AED/AEC label statistics ({path}):\n{table}")
    return table


def manifest_label_statistics(
    manifest_paths,
    tokenizer,
    max_len=DEFAULT_AEC_MAX_LEN,
    output_path=None,
    verbose=True,
    max_length=None,
):
    """Label statistics of the entries of SpeechBrain manifests that have a hypothesis.

    Entries are deduplicated by utterance id (fold manifests repeat utterances). The JSON goes to
    ``output_path`` or ``label_statistics.json`` in the folder of the first manifest.

    Arguments
    ---------
    manifest_paths : list of str or Path
        Manifests with ``transcript`` and ``hypothesis`` fields (docs/CONTRACTS.md).
    tokenizer : transformers.PreTrainedTokenizerFast
    max_len : int
        AEC target cap.
    output_path : str or Path, optional
    verbose : bool
    max_length : int, optional
        Hypothesis cap in tokens, as in training (see :func:`align_transcripts`).

    Returns
    -------
    dict
    """
    entries = {}
    for path in manifest_paths:
        with open(path, encoding="utf-8") as f:
            for utt_id, entry in json.load(f).items():
                if entry.get("hypothesis") is not None:
                    entries.setdefault(utt_id, (entry["hypothesis"], entry.get("transcript") or ""))
    if not entries:
        raise ValueError(
            f"no entry of {[str(p) for p in manifest_paths]} has a 'hypothesis'; prepare the "
            "manifests with a hypothesis cache (python -m m4ser_lobes.text.asr ...)"
        )
    stats = label_statistics(entries.values(), tokenizer, max_len=max_len, max_length=max_length)
    if output_path is None:
        output_path = Path(manifest_paths[0]).parent / "label_statistics.json"
    save_label_statistics(stats, output_path, verbose=verbose)
    return stats
