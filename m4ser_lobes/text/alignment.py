"""AED labels and AEC targets from the alignment of an ASR hypothesis with its reference.

M4SER (He et al., 2025, §III-C/D) reads an ASR hypothesis T, not the human transcript C, and learns
two auxiliary tasks from the difference between them (docs/design.md §4):

* **AED** (Eqs. 2-3) tags every WordPiece token of T as KEEP (0), DELETE (1) or CHANGE (2)
  (:class:`m4ser_lobes.text.tags.AEDTag`);
* **AEC** (Eqs. 4-7) decodes, for every CHANGE token, the WordPiece ids it must become
  (batched by :mod:`m4ser_lobes.text.targets`).

Both sides are normalised with :func:`m4ser_lobes.text.normalize.normalize_text`. With
``keep_punctuation`` the hypothesis keeps its punctuation for the encoder
(:func:`m4ser_lobes.text.tokens.encoder_text`): words are aligned exactly as without it, and the
punctuation tokens are labelled -100 (ignored, docs/design.md §4), so the labels of the words,
the targets and ``reconstruct`` are those of the alignment without punctuation.

Alignment rules (word level, docs/design.md §4). A longest common subsequence (LCS) of hypothesis
and reference words gives the anchors (KEEP). Between consecutive anchors (and before the first /
after the last) lies a hypothesis run h and a reference run g:

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
ids), and tokens are mapped to words by :mod:`m4ser_lobes.text.tokens`. :func:`correct` runs the
other way at inference: predicted labels and decoded spans back to text.

Cost. The LCS takes time and memory proportional to (hypothesis words) x (reference words). With
a cap ``max_length`` only the first ``max_length - 1`` hypothesis tokens are kept, so only windows
are aligned: the first ``max_length + WINDOW_MARGIN`` hypothesis words (the kept ones and at least
:data:`WINDOW_MARGIN` words of right context) against the first ``2 * (max_length +
WINDOW_MARGIN) + WINDOW_MARGIN`` reference words (room for an ASR that dropped as many words as it
kept). The cost is then bounded by the cap whatever the lengths of the texts (a 50,000-word
hypothesis of a 20,000-word reference aligns in a fraction of a second, in a few MB). Texts that
fit in the windows (at the recipes' cap of 128: 192 hypothesis and 448 reference words, far beyond
a normal IEMOCAP or MELD utterance) are aligned whole, exactly as without a cap. Otherwise the
labels of the kept tokens are those of the alignment of the windows (for transcripts with
ordinary ASR errors, those of the whole texts: a test checks it), and a target whose reference
run reaches the end of a cut reference window is dropped (its host keeps CHANGE; what it must
become lies partly beyond the window).

Example
-------
>>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
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

from dataclasses import dataclass, field
from itertools import pairwise

from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.tags import IGNORE_INDEX, AEDTag
from m4ser_lobes.text.tokens import (
    cut_ids,
    encode_with_specials,
    encoder_text,
    split_punctuation,
    tokenize_words,
    word_spans,
)

__all__ = ["Alignment", "align_transcripts", "reconstruct", "correct", "WINDOW_MARGIN"]

#: Words of context aligned beyond the ``max_length`` cut (module docstring, "Cost").
WINDOW_MARGIN = 64


# --------------------------------------------------------------------------------------------
# Word-level LCS and labels
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
    """Word-level labels and target word ranges following docs/design.md §4.

    Returns ``(labels, targets, cls_target)``: a label per hypothesis word, a dict word index ->
    (first, last + 1) reference word range, and the reference range hosted by [CLS] (or None).
    """
    labels = [AEDTag.DELETE] * n_hyp
    targets, cls_target = {}, None
    for i, _ in anchors:
        labels[i] = AEDTag.KEEP
    bounds = [(-1, -1)] + list(anchors) + [(n_hyp, n_ref)]
    for (i0, j0), (i1, j1) in pairwise(bounds):
        h_run, g_start, g_end = range(i0 + 1, i1), j0 + 1, j1
        if g_start == g_end:
            continue  # h words (if any) stay DELETE
        if h_run:  # substitution run: the last hypothesis word hosts the whole reference run
            labels[h_run[-1]] = AEDTag.CHANGE
            targets[h_run[-1]] = (g_start, g_end)
        elif i0 >= 0:  # ASR deletion: the left anchor becomes CHANGE -> [anchor] + g
            labels[i0] = AEDTag.CHANGE
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
        WordPiece ids of the normalised hypothesis with [CLS] ... [SEP] (length T_t), its
        punctuation kept with ``keep_punctuation``.
    labels : list of int
        One per input id: 0 KEEP, 1 DELETE, 2 CHANGE, -100 ignored ([SEP], punctuation).
    targets : dict of int to list of int
        CHANGE position -> the WordPiece ids it must become (no BOS/EOS).
    reference_ids : list of int
        WordPiece ids of the normalised reference (no specials); of its window when ``truncated``.
    num_cut_targets : int
        CHANGE targets dropped because ``max_length`` cut their host or the reference window cut
        their reference run (0 when nothing was cut; counted within the windows).
    truncated : bool
        Whether ``max_length`` cut the hypothesis or the reference window cut the reference;
        ``reconstruct`` returns the reference only when it is False.
    """

    input_ids: list[int]
    labels: list[int]
    targets: dict[int, list[int]]
    reference_ids: list[int] = field(default_factory=list)
    num_cut_targets: int = 0
    truncated: bool = False


def align_transcripts(hypothesis, reference, tokenizer, max_length=None, keep_punctuation=False):
    """AED labels and AEC targets for one (ASR hypothesis, human reference) pair.

    The rules are those of the module docstring (docs/design.md §4).

    Both sides are normalised with :func:`normalize_text`. With ``max_length``, a hypothesis
    longer than ``max_length`` ids keeps its first ``max_length - 1`` ids and its [SEP], labels are
    cut alike, and the targets of CHANGE hosts that fall in the cut part are dropped (counted in
    ``num_cut_targets``). A word cut in the middle keeps the labels of its surviving sub-tokens.
    The reference words those hosts carried are then lost, so ``reconstruct`` returns the reference
    only when ``truncated`` is False. ``max_length`` also bounds the cost: long texts are aligned
    in windows (module docstring, "Cost"; a punctuation item counts as a word there).

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
    keep_punctuation : bool
        Keep the hypothesis's punctuation in ``input_ids``, labelled -100.

    Returns
    -------
    Alignment

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> a = align_transcripts("you know it", "you it is", tok)  # 'know' inserted, 'is' dropped
    >>> tok.convert_ids_to_tokens(a.input_ids), a.labels
    (['[CLS]', 'you', 'know', 'it', '[SEP]'], [0, 0, 1, 2, -100])
    >>> tok.convert_ids_to_tokens(a.targets[3])
    ['it', 'is']
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path") / "p", ["?", ","])
    >>> a = align_transcripts("So, you know it?", "so you it is", tok, keep_punctuation=True)
    >>> tok.convert_ids_to_tokens(a.input_ids), a.labels
    (['[CLS]', 'so', ',', 'you', 'know', 'it', '?', '[SEP]'], [0, 0, -100, 0, 1, 2, -100, -100])
    """
    hyp_text = encoder_text(hypothesis, keep_punctuation)
    ref_text, ref_cut = normalize_text(reference), False
    if max_length is not None:
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 to hold [CLS] and [SEP], got {max_length}")
        hyp_text, _ = _first_words(hyp_text, max_length + WINDOW_MARGIN)
        ref_text, ref_cut = _first_words(ref_text, 2 * (max_length + WINDOW_MARGIN) + WINDOW_MARGIN)
    hyp_ids, hyp_owners = encode_with_specials(hyp_text, tokenizer)
    hyp_owners, _ = split_punctuation(hyp_owners, hyp_text)  # punctuation: no word, -100
    ref_ids, ref_owners, _ = tokenize_words(ref_text, tokenizer, False)
    hyp_words, ref_words = word_spans(hyp_owners), word_spans(ref_owners)
    hyp_keys = [tuple(hyp_ids[p] for p in span) for span in hyp_words]
    ref_keys = [tuple(ref_ids[p] for p in span) for span in ref_words]
    anchors = _lcs_anchors(hyp_keys, ref_keys)
    word_labels, word_targets, cls_target = _word_decisions(len(hyp_keys), len(ref_keys), anchors)

    def ref_slice(first, stop):
        return [ref_ids[p] for span in ref_words[first:stop] for p in span]

    # [CLS] KEEP; specials and punctuation ignored
    labels = [AEDTag.KEEP] + [IGNORE_INDEX] * (len(hyp_ids) - 1)
    targets = {}
    if cls_target is not None:
        labels[0] = AEDTag.CHANGE
        targets[0] = ref_slice(*cls_target)
    for w, span in enumerate(hyp_words):
        for p in span:
            labels[p] = AEDTag.DELETE if word_labels[w] == AEDTag.CHANGE else word_labels[w]
        if word_labels[w] == AEDTag.CHANGE:
            labels[span[-1]] = AEDTag.CHANGE
            targets[span[-1]] = ref_slice(*word_targets[w])
    labels = [int(label) for label in labels]  # plain ints, as stored and serialised
    num_cut = 0
    if ref_cut:  # the run that reaches the end of the window goes on beyond it: unknown target
        ends = {0: cls_target} if cls_target is not None else {}
        ends.update({hyp_words[w][-1]: r for w, r in word_targets.items()})
        for position, (_, stop) in ends.items():
            if stop == len(ref_words):
                del targets[position]
                num_cut += 1
    alignment = Alignment(hyp_ids, labels, targets, list(ref_ids), num_cut, ref_cut)
    return _truncate(alignment, max_length)


def _first_words(text, n):
    """The first ``n`` words of normalised ``text``, and whether words were cut.

    Example
    -------
    >>> _first_words("a b c", 2), _first_words("a b", 2)
    (('a b', True), ('a b', False))
    """
    words = text.split(" ", n)
    if len(words) <= n:
        return text, False
    return " ".join(words[:n]), True


def _truncate(alignment, max_length):
    if max_length is None or len(alignment.input_ids) <= max_length:
        return alignment
    keep = max_length - 1
    input_ids = cut_ids(alignment.input_ids, max_length)
    labels = alignment.labels[:keep] + [IGNORE_INDEX]
    targets = {p: t for p, t in alignment.targets.items() if p < keep}
    return Alignment(
        input_ids,
        labels,
        targets,
        alignment.reference_ids,
        num_cut_targets=alignment.num_cut_targets + len(alignment.targets) - len(targets),
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
        if label == AEDTag.CHANGE:
            if position not in alignment.targets:
                raise KeyError(
                    f"position {position} is labelled CHANGE but has no entry in targets; "
                    "build alignments with align_transcripts()"
                )
            out.extend(alignment.targets[position])
        elif label == AEDTag.KEEP and position > 0:
            out.append(token)
    return out


# --------------------------------------------------------------------------------------------
# From predicted labels back to text (inference)
# --------------------------------------------------------------------------------------------


def correct(hypothesis_ids, predicted_labels, decoded_spans, tokenizer, unlabelled=()):
    """Turn predicted AED labels and decoded AEC spans into corrected, normalised text.

    KEEP emits the token, DELETE drops it, CHANGE emits its decoded span; special tokens ([CLS],
    [SEP], padding) are never emitted, neither from the hypothesis nor from a span. A CHANGE
    position without an entry in ``decoded_spans`` keeps its token (no correction available).
    Special tokens are never corrected: a predicted CHANGE on [SEP], padding or any special token
    after position 0 is ignored. The leading [CLS] (position 0) may be CHANGE: it hosts the words
    the ASR dropped before the first hypothesis word (docs/design.md §4), emitted in front. The
    prediction at an ``unlabelled`` position (punctuation kept for the encoder, which training
    labels -100) is not used: the token is kept, and the normalisation of the output drops it.

    Arguments
    ---------
    hypothesis_ids : list of int or torch.Tensor
        [T_t] ids of one hypothesis (padding allowed).
    predicted_labels : list of int or torch.Tensor
        [T_t] predicted labels (0/1/2; anything else is ignored).
    decoded_spans : dict of int to list of int
        CHANGE position -> decoded ids (BOS/EOS/padding are dropped).
    tokenizer : transformers.PreTrainedTokenizerBase
    unlabelled : collection of int
        Positions whose prediction is ignored (:func:`m4ser_lobes.text.tokens.encode_text`'s
        punctuation positions).

    Returns
    -------
    str
        The corrected text, normalised with :func:`normalize_text`.

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
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
    special, unlabelled = set(tokenizer.all_special_ids), set(unlabelled)
    ids = [int(t) for t in hypothesis_ids]
    out = []
    for position, (token, label) in enumerate(zip(ids, (int(x) for x in predicted_labels))):
        label = AEDTag.KEEP if position in unlabelled else label
        host = token not in special or (position == 0 and token != tokenizer.pad_token_id)
        if label == AEDTag.CHANGE and host and position in decoded_spans:
            out.extend(t for t in (int(x) for x in decoded_spans[position]) if t not in special)
        elif label in (AEDTag.KEEP, AEDTag.CHANGE) and token not in special:
            out.append(token)
    # WordPiece decodes "don't" as "don ' t" unless the clean-up joins it again; byte-level BPE
    # keeps its spaces and must not be cleaned up.
    backend = getattr(tokenizer, "backend_tokenizer", None)
    wordpiece = backend is not None and type(backend.model).__name__ == "WordPiece"
    text = tokenizer.decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=wordpiece)
    return normalize_text(text)
