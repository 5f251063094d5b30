"""The text side of M4SER: normalisation, AED labels, AEC targets and transcript correction.

M4SER (He et al., 2025, §III-C/D) reads an ASR hypothesis T, not the human transcript C, and learns
two auxiliary tasks from the difference between them (design §4):

* **AED** (Eqs. 2-3) tags every WordPiece token of T as KEEP (0), DELETE (1) or CHANGE (2);
* **AEC** (Eqs. 4-7) decodes, for every CHANGE token, the WordPiece ids it must become.

One normaliser (:func:`normalize_text`) serves the WER, the alignment and the text fed to the text
encoder, so the encoder's tokens are exactly the tokens that the labels index.

Alignment rules (word level, design §4). A longest common subsequence (LCS) of hypothesis and
reference words gives the anchors (KEEP). Between consecutive anchors (and before the first / after
the last) lies a hypothesis run h and a reference run g:

======================  =======================================================================
h, g                    labels
======================  =======================================================================
h ≠ ∅, g = ∅            every word of h is DELETE (ASR insertion)
h ≠ ∅, g ≠ ∅            the last word of h is CHANGE with target g, the others DELETE
h = ∅, g ≠ ∅            the left anchor is CHANGE with target [anchor] + g; [CLS] hosts g when
                        there is no left anchor (ASR deletion)
======================  =======================================================================

WordPiece expansion: KEEP/DELETE copy to every sub-token of a word; a CHANGE word carries CHANGE on
its last sub-token and DELETE on the others. [CLS] is KEEP unless it hosts; [SEP] and padding are
ignored (-100). Every target is a contiguous slice of the reference's WordPiece ids, which gives the
invariant ``reconstruct(align_transcripts(h, r, tok)) == tok(normalize_text(r),
add_special_tokens=False).input_ids``.

Words are compared through their WordPiece ids (two words match when the text encoder sees the same
ids), and tokens are mapped to words through the fast tokenizer's character offsets; the code
therefore also holds for context-dependent tokenizers (byte-level BPE of RoBERTa).

Shape legend: K CHANGE tokens of a batch, L decoder length (target length + 1).

Example
-------
>>> from m4ser_lobes.utils.testing import save_wordpiece_tokenizer
>>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"), ["hello", "world", "there"])
>>> a = align_transcripts("Hello word!", "Hello there, world.", tok)
>>> tok.convert_ids_to_tokens(a.input_ids)
['[CLS]', 'hello', 'w', '##o', '##r', '##d', '[SEP]']
>>> a.labels  # 'word' is replaced by 'there world': DELETE on its sub-tokens, CHANGE on the last
[0, 0, 1, 1, 1, 2, -100]
>>> {pos: tok.convert_ids_to_tokens(ids) for pos, ids in a.targets.items()}
{5: ['there', 'world']}
>>> reconstruct(a) == tok("hello there world", add_special_tokens=False).input_ids
True
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import torch

from m4ser_lobes.utils.fileio import atomic_write_json

KEEP, DELETE, CHANGE = 0, 1, 2
IGNORE_INDEX = -100
LABEL_NAMES = ("keep", "delete", "change")

__all__ = [
    "KEEP",
    "DELETE",
    "CHANGE",
    "IGNORE_INDEX",
    "normalize_text",
    "Alignment",
    "align_transcripts",
    "encode_hypothesis",
    "reconstruct",
    "full_correction_target",
    "CorrectionBatch",
    "batch_correction_targets",
    "correct",
    "word_error_counts",
    "word_error_rate",
    "label_statistics",
    "save_label_statistics",
    "manifest_label_statistics",
]

# --------------------------------------------------------------------------------------------
# 1. Normalisation
# --------------------------------------------------------------------------------------------

# Curly quotes, primes, accents used as apostrophes, and the cp1252 quote bytes that MELD's old
# CSVs leave behind when read as latin-1 (U+0091/U+0092/U+0093/U+0094).
_QUOTES = str.maketrans(
    "\u2018\u2019\u201a\u201b\u2032\u00b4`\u0091\u0092" + "\u201c\u201d\u201e\u2033\u0093\u0094",
    "'" * 9 + '"' * 6,
)
# UTF-8 '’' read as cp1252, as found in some MELD copies.
_MOJIBAKE_APOSTROPHE = "\u00e2\u20ac\u2122"
# Non-speech tags: [LAUGHTER], <noise>, (laughs) — the same brackets Whisper's normaliser removes.
_TAGS = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)")


def _keep_char(ch):
    """True for letters, digits, combining marks and the apostrophe; the rest is punctuation."""
    return ch.isalnum() or ch == "'" or unicodedata.category(ch).startswith("M")


def normalize_text(text):
    """Normalise a transcript or hypothesis for WER, alignment and the text encoder.

    Steps: unify curly quotes and apostrophes; NFKC; lowercase; strip bracketed non-speech tags
    (``[LAUGHTER]``, ``<noise>``, ``(laughs)``); replace every other punctuation or symbol by a
    space (apostrophes are kept wherever they stand — "don't", "'cause", "goin'" — and words made
    only of apostrophes are dropped); collapse spaces.

    Arguments
    ---------
    text : str or None
        Raw text; ``None`` is treated as empty.

    Returns
    -------
    str
        Lowercase words separated by single spaces (possibly empty).

    Example
    -------
    >>> normalize_text("Oh my God, you’re… [LAUGHTER] “late”!")
    "oh my god you're late"
    >>> normalize_text("  [BREATHING]  ")
    ''
    >>> normalize_text("well-known U.S. (laughs) 50%")
    'well known u s 50'
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects a str, got {type(text).__name__}: {text!r}")
    text = text.replace(_MOJIBAKE_APOSTROPHE, "'").translate(_QUOTES)
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = _TAGS.sub(" ", text)
    text = "".join(ch if _keep_char(ch) else " " for ch in text)
    return " ".join(w for w in text.split() if w.strip("'"))


# --------------------------------------------------------------------------------------------
# 2. Tokenisation with a word index per token
# --------------------------------------------------------------------------------------------


def _check_tokenizer(tokenizer):
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is a slow tokenizer; the alignment needs character "
            "offsets. Load it with AutoTokenizer.from_pretrained(name, use_fast=True)."
        )


def _tokenize(text, tokenizer, add_special_tokens):
    """Tokenise normalised ``text``; return ids, the word index of each id (-1: special), words.

    Token i belongs to the word that contains its last character (robust to offsets that include
    the leading space, as byte-level BPE may give).
    """
    _check_tokenizer(tokenizer)
    words = text.split(" ") if text else []
    starts, pos = [], 0
    for word in words:
        starts.append(pos)
        pos += len(word) + 1
    enc = tokenizer(
        text,
        add_special_tokens=add_special_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=False,
        verbose=False,
    )
    owners = []
    for (start, end), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        if special:
            owners.append(-1)
        else:
            last_char = end - 1 if end > start else start
            owners.append(max(bisect_right(starts, last_char) - 1, 0))
    return list(enc["input_ids"]), owners, words


def _word_spans(owners):
    """Group token positions by word: list of (word index, [positions]) in text order."""
    spans = {}
    for position, owner in enumerate(owners):
        if owner >= 0:
            spans.setdefault(owner, []).append(position)
    return [spans[w] for w in sorted(spans)]


def _encode_with_specials(text, tokenizer):
    ids, owners, _ = _tokenize(text, tokenizer, add_special_tokens=True)
    if len(ids) < 2 or owners[0] != -1 or owners[-1] != -1:
        raise ValueError(
            f"{type(tokenizer).__name__} does not wrap text in a leading and a trailing special "
            "token ([CLS] ... [SEP]); AED needs a BERT-family tokenizer (BERT, RoBERTa, ...)."
        )
    return ids, owners


def _cut(ids, max_length):
    """Keep the first ``max_length - 1`` ids and the final special token ([SEP])."""
    if max_length is None or len(ids) <= max_length:
        return list(ids)
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 to hold [CLS] and [SEP], got {max_length}")
    return list(ids[: max_length - 1]) + [ids[-1]]


def encode_hypothesis(hypothesis, tokenizer, max_length=None):
    """WordPiece ids of a normalised hypothesis with [CLS]/[SEP], for inference without reference.

    The ids are exactly the ``input_ids`` of :func:`align_transcripts` for the same arguments.

    Arguments
    ---------
    hypothesis : str
        Raw ASR hypothesis (normalised here).
    tokenizer : transformers.PreTrainedTokenizerFast
        The text encoder's tokenizer.
    max_length : int, optional
        Cap on the number of ids including [CLS] and [SEP]; longer inputs keep their first
        ``max_length - 1`` ids and the final [SEP].

    Returns
    -------
    list of int

    Example
    -------
    >>> from m4ser_lobes.utils.testing import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok))
    ['[CLS]', 'i', 'know', 'okay', '[SEP]']
    >>> tok.convert_ids_to_tokens(encode_hypothesis("I KNOW, okay?!", tok, max_length=3))
    ['[CLS]', 'i', '[SEP]']
    """
    ids, _ = _encode_with_specials(normalize_text(hypothesis), tokenizer)
    return _cut(ids, max_length)


# --------------------------------------------------------------------------------------------
# 3. Word-level LCS and labels
# --------------------------------------------------------------------------------------------


def _lcs_anchors(hyp_keys, ref_keys):
    """Pairs (i, j) of one longest common subsequence, in order (earliest matches first)."""
    n, m = len(hyp_keys), len(ref_keys)
    # suffix[i][j] = LCS length of hyp_keys[i:] and ref_keys[j:]
    suffix = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = suffix[i], suffix[i + 1]
        for j in range(m - 1, -1, -1):
            if hyp_keys[i] == ref_keys[j]:
                row[j] = below[j + 1] + 1
            else:
                row[j] = max(below[j], row[j + 1])
    anchors, i, j = [], 0, 0
    while i < n and j < m:
        if hyp_keys[i] == ref_keys[j]:
            anchors.append((i, j))
            i, j = i + 1, j + 1
        elif suffix[i + 1][j] >= suffix[i][j + 1]:
            i += 1
        else:
            j += 1
    return anchors


def _word_decisions(n_hyp, n_ref, anchors):
    """Word-level labels and target word ranges following design §4.

    Returns ``(labels, targets, cls_target)``: a label per hypothesis word, a dict word index ->
    (first, last + 1) reference word range, and the reference range hosted by [CLS] (or None).
    """
    labels = [DELETE] * n_hyp
    targets, cls_target = {}, None
    for i, _ in anchors:
        labels[i] = KEEP
    bounds = [(-1, -1)] + list(anchors) + [(n_hyp, n_ref)]
    for (i0, j0), (i1, j1) in pairwise(bounds):
        h_run, g_start, g_end = range(i0 + 1, i1), j0 + 1, j1
        if g_start == g_end:
            continue  # h words (if any) stay DELETE
        if h_run:  # substitution run: the last hypothesis word hosts the whole reference run
            labels[h_run[-1]] = CHANGE
            targets[h_run[-1]] = (g_start, g_end)
        elif i0 >= 0:  # ASR deletion: the left anchor becomes CHANGE -> [anchor] + g
            labels[i0] = CHANGE
            targets[i0] = (j0, g_end)
        else:  # nothing to the left: [CLS] hosts g
            cls_target = (g_start, g_end)
    return labels, targets, cls_target


@dataclass
class Alignment:
    """AED labels and AEC targets of one utterance.

    Arguments
    ---------
    input_ids : list of int
        WordPiece ids of the normalised hypothesis with [CLS] ... [SEP] (length T_t).
    labels : list of int
        One per input id: 0 KEEP, 1 DELETE, 2 CHANGE, -100 ignored ([SEP]).
    targets : dict of int to list of int
        CHANGE position -> the WordPiece ids it must become (no BOS/EOS).
    reference_ids : list of int
        WordPiece ids of the whole normalised reference (no specials).
    num_cut_targets : int
        CHANGE targets dropped because ``max_length`` cut their host (0 when nothing was cut).
    truncated : bool
        Whether ``max_length`` cut the hypothesis.
    """

    input_ids: list[int]
    labels: list[int]
    targets: dict[int, list[int]]
    reference_ids: list[int] = field(default_factory=list)
    num_cut_targets: int = 0
    truncated: bool = False


def align_transcripts(hypothesis, reference, tokenizer, max_length=None):
    """AED labels and AEC targets for one (ASR hypothesis, human reference) pair (design §4).

    Both sides are normalised with :func:`normalize_text`. With ``max_length``, a hypothesis
    longer than ``max_length`` ids keeps its first ``max_length - 1`` ids and its [SEP], labels are
    cut alike, and the targets of CHANGE hosts that fall in the cut part are dropped (counted in
    ``num_cut_targets``). A word cut in the middle keeps the labels of its surviving sub-tokens.
    The reference words those hosts carried are then lost, so ``reconstruct`` returns the reference
    only when ``truncated`` is False.

    Arguments
    ---------
    hypothesis : str
        Raw ASR hypothesis.
    reference : str
        Raw human transcript.
    tokenizer : transformers.PreTrainedTokenizerFast
        The text encoder's tokenizer (BERT-family: adds a leading and a trailing special token).
    max_length : int, optional
        Cap on ``len(input_ids)`` (including [CLS] and [SEP]).

    Returns
    -------
    Alignment

    Example
    -------
    >>> from m4ser_lobes.utils.testing import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> a = align_transcripts("you know it", "you it is", tok)  # 'know' inserted, 'is' dropped
    >>> tok.convert_ids_to_tokens(a.input_ids), a.labels
    (['[CLS]', 'you', 'know', 'it', '[SEP]'], [0, 0, 1, 2, -100])
    >>> tok.convert_ids_to_tokens(a.targets[3])
    ['it', 'is']
    """
    hyp_ids, hyp_owners = _encode_with_specials(normalize_text(hypothesis), tokenizer)
    ref_ids, ref_owners, _ = _tokenize(normalize_text(reference), tokenizer, False)
    hyp_words, ref_words = _word_spans(hyp_owners), _word_spans(ref_owners)
    hyp_keys = [tuple(hyp_ids[p] for p in span) for span in hyp_words]
    ref_keys = [tuple(ref_ids[p] for p in span) for span in ref_words]
    anchors = _lcs_anchors(hyp_keys, ref_keys)
    word_labels, word_targets, cls_target = _word_decisions(len(hyp_keys), len(ref_keys), anchors)

    def ref_slice(first, stop):
        return [ref_ids[p] for span in ref_words[first:stop] for p in span]

    labels = [KEEP] + [IGNORE_INDEX] * (len(hyp_ids) - 1)  # [CLS] KEEP, specials ignored
    targets = {}
    if cls_target is not None:
        labels[0] = CHANGE
        targets[0] = ref_slice(*cls_target)
    for w, span in enumerate(hyp_words):
        for p in span:
            labels[p] = DELETE if word_labels[w] == CHANGE else word_labels[w]
        if word_labels[w] == CHANGE:
            labels[span[-1]] = CHANGE
            targets[span[-1]] = ref_slice(*word_targets[w])
    alignment = Alignment(hyp_ids, labels, targets, list(ref_ids))
    return _truncate(alignment, max_length)


def _truncate(alignment, max_length):
    if max_length is None or len(alignment.input_ids) <= max_length:
        return alignment
    keep = max_length - 1
    input_ids = _cut(alignment.input_ids, max_length)
    labels = alignment.labels[:keep] + [IGNORE_INDEX]
    targets = {p: t for p, t in alignment.targets.items() if p < keep}
    return Alignment(
        input_ids,
        labels,
        targets,
        alignment.reference_ids,
        num_cut_targets=len(alignment.targets) - len(targets),
        truncated=True,
    )


def reconstruct(alignment):
    """Apply gold labels and targets to the hypothesis ids: the reference's WordPiece ids.

    KEEP emits the token ([CLS] at position 0 emits nothing), DELETE and -100 emit nothing,
    CHANGE emits its target.

    Arguments
    ---------
    alignment : Alignment

    Returns
    -------
    list of int

    Example
    -------
    >>> reconstruct(Alignment([2, 10, 11, 12, 3], [2, 0, 1, 2, -100], {0: [7], 3: [12, 13]}))
    [7, 10, 12, 13]
    """
    out = []
    for position, (token, label) in enumerate(zip(alignment.input_ids, alignment.labels)):
        if label == CHANGE:
            if position not in alignment.targets:
                raise KeyError(
                    f"position {position} is labelled CHANGE but has no entry in targets; "
                    "build alignments with align_transcripts()"
                )
            out.extend(alignment.targets[position])
        elif label == KEEP and position > 0:
            out.append(token)
    return out


def full_correction_target(reference, tokenizer):
    """Target of the "w/o AED" ablation (Table IV C1): the whole normalised reference.

    The host of this single sequence is [CLS] (position 0), i.e. use ``{0: ids}`` as the targets.
    The target is not cut here; :func:`batch_correction_targets` caps it (at ``max_tokens`` in
    training) and counts the cut sequences.

    Arguments
    ---------
    reference : str
        Raw human transcript.
    tokenizer : transformers.PreTrainedTokenizerFast

    Returns
    -------
    list of int
        WordPiece ids without special tokens.

    Example
    -------
    >>> from m4ser_lobes.utils.testing import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> tok.convert_ids_to_tokens(full_correction_target("Okay. [LAUGHTER] Yes!", tok))
    ['okay', 'yes']
    """
    ids, _, _ = _tokenize(normalize_text(reference), tokenizer, False)
    return ids


# --------------------------------------------------------------------------------------------
# 4. Selective decoder batches (Eqs. 4-7)
# --------------------------------------------------------------------------------------------


@dataclass
class CorrectionBatch:
    """The K decoder sequences of a batch, one per CHANGE token (design §4).

    Arguments
    ---------
    batch_index : torch.LongTensor
        [K] utterance b of each sequence.
    positions : torch.LongTensor
        [K] token position j of the host in the utterance (0 = [CLS]).
    decoder_input : torch.LongTensor
        [K, L] ``[BOS] z_1 .. z_c`` padded with ``pad_id``.
    decoder_labels : torch.LongTensor
        [K, L] ``z_1 .. z_c [EOS]`` padded with -100. A target cut by ``max_len`` ends with -100
        instead of [EOS], so the decoder is never taught to stop inside a longer span.
    decoder_pad_mask : torch.BoolTensor
        [K, L] True = padding.
    num_truncated : int
        Sequences (not tokens) whose target is longer than ``max_len``.
    """

    batch_index: torch.Tensor
    positions: torch.Tensor
    decoder_input: torch.Tensor
    decoder_labels: torch.Tensor
    decoder_pad_mask: torch.Tensor
    num_truncated: int = 0

    @property
    def num_sequences(self):
        """K, the number of decoder sequences."""
        return self.decoder_input.shape[0]

    def to(self, device):
        """Return a copy with every tensor on ``device``."""
        return CorrectionBatch(
            self.batch_index.to(device),
            self.positions.to(device),
            self.decoder_input.to(device),
            self.decoder_labels.to(device),
            self.decoder_pad_mask.to(device),
            self.num_truncated,
        )


def batch_correction_targets(targets_per_utt, bos_id, eos_id, pad_id, max_len=16):
    """Stack the AEC targets of a batch into teacher-forcing tensors (Eqs. 4-7).

    Sequences are ordered by utterance, then by position. ``L = min(longest target, max_len) + 1``;
    with K = 0 the tensors have shape [0, 1] and [0].

    Arguments
    ---------
    targets_per_utt : list of dict of int to list of int
        ``Alignment.targets`` of each utterance of the batch (B dicts).
    bos_id, eos_id, pad_id : int
        [BOS] (= [CLS]), [EOS] (= [SEP]) and padding ids of the text vocabulary.
    max_len : int
        Cap on the number of target tokens c: ``aec_max_len`` (design §4: 16) for selective
        correction, the text length limit ``max_tokens`` for the whole-utterance targets of
        :func:`full_correction_target`.

    Returns
    -------
    CorrectionBatch

    Example
    -------
    >>> cb = batch_correction_targets([{3: [7, 8]}, {}, {0: [9], 2: [5, 6, 7]}], 2, 3, 0, max_len=2)
    >>> cb.batch_index.tolist(), cb.positions.tolist(), cb.num_truncated
    ([0, 2, 2], [3, 0, 2], 1)
    >>> cb.decoder_input.tolist()
    [[2, 7, 8], [2, 9, 0], [2, 5, 6]]
    >>> cb.decoder_labels.tolist()
    [[7, 8, 3], [9, 3, -100], [5, 6, -100]]
    >>> cb.decoder_pad_mask.tolist()
    [[False, False, False], [False, False, True], [False, False, False]]
    >>> batch_correction_targets([{}, {}], 2, 3, 0).decoder_input.shape
    torch.Size([0, 1])
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1 target token, got {max_len}")
    rows, num_truncated = [], 0
    for b, targets in enumerate(targets_per_utt):
        for position in sorted(targets):
            z = [int(t) for t in targets[position]]
            cut = len(z) > max_len
            num_truncated += cut
            rows.append((b, int(position), z[:max_len], cut))
    length = max((len(z) for _, _, z, _ in rows), default=0) + 1
    k = len(rows)
    decoder_input = torch.full((k, length), pad_id, dtype=torch.long)
    decoder_labels = torch.full((k, length), IGNORE_INDEX, dtype=torch.long)
    pad_mask = torch.ones((k, length), dtype=torch.bool)
    for row, (_, _, z, cut) in enumerate(rows):
        c = len(z)
        decoder_input[row, : c + 1] = torch.tensor([bos_id] + z, dtype=torch.long)
        decoder_labels[row, : c + 1] = torch.tensor(z + [IGNORE_INDEX if cut else eos_id])
        pad_mask[row, : c + 1] = False
    return CorrectionBatch(
        torch.tensor([r[0] for r in rows], dtype=torch.long),
        torch.tensor([r[1] for r in rows], dtype=torch.long),
        decoder_input,
        decoder_labels,
        pad_mask,
        num_truncated,
    )


def correct(hypothesis_ids, predicted_labels, decoded_spans, tokenizer):
    """Turn predicted AED labels and decoded AEC spans into corrected, normalised text.

    KEEP emits the token, DELETE drops it, CHANGE emits its decoded span; special tokens ([CLS],
    [SEP], padding) are never emitted, neither from the hypothesis nor from a span. A CHANGE
    position without an entry in ``decoded_spans`` keeps its token (no correction available).
    Special tokens are never corrected: a predicted CHANGE on [SEP], padding or any special token
    after position 0 is ignored. The leading [CLS] (position 0) may be CHANGE: it hosts the words
    the ASR dropped before the first hypothesis word (design §4), emitted in front.

    Arguments
    ---------
    hypothesis_ids : list of int or torch.Tensor
        [T_t] ids of one hypothesis (padding allowed).
    predicted_labels : list of int or torch.Tensor
        [T_t] predicted labels (0/1/2; anything else is ignored).
    decoded_spans : dict of int to list of int
        CHANGE position -> decoded ids (BOS/EOS/padding are dropped).
    tokenizer : transformers.PreTrainedTokenizerBase

    Returns
    -------
    str
        The corrected text, normalised with :func:`normalize_text`.

    Example
    -------
    >>> from m4ser_lobes.utils.testing import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> a = align_transcripts("i no dont know", "i don't know", tok)
    >>> correct(a.input_ids, a.labels, a.targets, tok)
    "i don't know"
    >>> correct(a.input_ids, [0] * len(a.input_ids), {}, tok)  # all KEEP: the hypothesis
    'i no dont know'
    >>> spans = {p: tok("okay", add_special_tokens=False).input_ids for p in range(5)}
    >>> correct(a.input_ids[:3] + a.input_ids[-1:], [2, 2, 2, 2], spans, tok)  # [SEP] untouched
    'okay okay okay'
    """
    special = set(tokenizer.all_special_ids)
    ids = [int(t) for t in hypothesis_ids]
    out = []
    for position, (token, label) in enumerate(zip(ids, (int(x) for x in predicted_labels))):
        host = token not in special or (position == 0 and token != tokenizer.pad_token_id)
        if label == CHANGE and host and position in decoded_spans:
            out.extend(t for t in (int(x) for x in decoded_spans[position]) if t not in special)
        elif label in (KEEP, CHANGE) and token not in special:
            out.append(token)
    # WordPiece decodes "don't" as "don ' t" unless the clean-up joins it again; byte-level BPE
    # keeps its spaces and must not be cleaned up.
    backend = getattr(tokenizer, "backend_tokenizer", None)
    wordpiece = backend is not None and type(backend.model).__name__ == "WordPiece"
    text = tokenizer.decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=wordpiece)
    return normalize_text(text)


# --------------------------------------------------------------------------------------------
# 5. WER and corpus statistics
# --------------------------------------------------------------------------------------------


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
    """Corpus WER (jiwer, normalised text): errors over reference words; None without words.

    Arguments
    ---------
    pairs : iterable of (str, str)
        (hypothesis, reference) pairs, raw text.

    Returns
    -------
    float or None

    Example
    -------
    >>> word_error_rate([("excuse me", "Excuse me."), ("i'm going", "I’m not going")])
    0.2
    """
    return word_error_counts(pairs)["wer"]


def label_statistics(pairs, tokenizer, max_len=16, max_length=None):
    """Label shares, target counts and WER of a labelled corpus (issue #3, §4).

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
    >>> from m4ser_lobes.utils.testing import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> s = label_statistics([("i know", "i know"), ("you", "yes you do")], tok)
    >>> s["keep"], s["delete"], s["change"], s["num_targets"], s["wer"]
    (3, 0, 2, 2, 0.4)
    """
    pairs = list(pairs)
    counts = [0, 0, 0]
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
    manifest_paths, tokenizer, max_len=16, output_path=None, verbose=True, max_length=None
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
