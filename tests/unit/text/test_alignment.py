"""Tests of m4ser_lobes.text: normalisation, AED labels, AEC targets, correction, statistics.

Modules: normalize, tokens, alignment, targets, statistics (and the tag set of tags).
"""

import json

import jiwer
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m4ser_lobes.text.alignment import Alignment, align_transcripts, correct, reconstruct
from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.statistics import (
    label_statistics,
    manifest_label_statistics,
    save_label_statistics,
    word_error_rate,
)
from m4ser_lobes.text.tags import IGNORE_INDEX, AEDTag
from m4ser_lobes.text.targets import batch_correction_targets, full_correction_target
from m4ser_lobes.text.tokens import encode_hypothesis
from m4ser_lobes.testing.models import save_wordpiece_tokenizer

K, D, C, X = AEDTag.KEEP, AEDTag.DELETE, AEDTag.CHANGE, IGNORE_INDEX
WHOLE_WORDS = ["hello", "world", "there", "cat", "sat", "mat", "dog", "ran", "really"]
# Not in the vocabulary: split into several WordPiece sub-tokens.
SPLIT_WORDS = ["zebra", "quokka", "banana", "xylophone", "emotion"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return save_wordpiece_tokenizer(tmp_path_factory.mktemp("wordpiece"), WHOLE_WORDS)


@pytest.fixture(scope="module")
def bpe_tok():
    """A RoBERTa-style byte-level BPE tokenizer: a word's ids depend on a preceding space."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator([" ".join(WHOLE_WORDS + ["i", "know", "you", "don't"])] * 4, trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def ids(tok, text):
    return tok(text, add_special_tokens=False).input_ids


def tokens(tok, a):
    return tok.convert_ids_to_tokens(a.input_ids)


def check_invariant(tok, hyp, ref):
    a = align_transcripts(hyp, ref, tok)
    assert reconstruct(a) == ids(tok, normalize_text(ref))
    assert a.reference_ids == ids(tok, normalize_text(ref))
    return a


# ---------------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Hello, World!", "hello world"),
        ("Excuse me. [LAUGHTER] What?", "excuse me what"),
        ("[BREATHING] [GARBAGE]", ""),
        ("Oh my God, you\u2019re late\u2026", "oh my god you're late"),
        ("\u201cQuoted\u201d \u2018single\u2019", "quoted 'single'"),  # apostrophes are kept
        ("'cause I was goin'", "'cause i was goin'"),
        ("you\x92re", "you're"),  # cp1252 apostrophe read as latin-1 (old MELD CSVs)
        ("you\u00e2\u20ac\u2122re", "you're"),  # UTF-8 apostrophe read as cp1252
        ("don't   stop\t\nnow", "don't stop now"),
        ("well-known U.S.A.", "well known u s a"),
        ("(laughs) okay <noise> fine", "okay fine"),
        ("' quoted ' words", "quoted words"),
        ("It's 5 o'clock", "it's 5 o'clock"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_text_cases(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_text_rejects_non_strings():
    with pytest.raises(TypeError, match="expects a str"):
        normalize_text(["hello"])


@given(st.text(max_size=60))
@settings(max_examples=150, deadline=None)
def test_normalize_text_is_idempotent_and_clean(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once
    assert once == once.lower()
    assert not any(ch in once for ch in ',.!?;:"[]()')


# ------------------------------------------------------------------------- hand-written cases


def test_identical_pair_is_all_keep(tok):
    a = check_invariant(tok, "I know, you know.", "i know you know")
    assert tokens(tok, a) == ["[CLS]", "i", "know", "you", "know", "[SEP]"]
    assert a.labels == [K, K, K, K, K, X]
    assert a.targets == {}


def test_substitution_run_is_hosted_by_last_hypothesis_word(tok):
    a = check_invariant(tok, "the cat sat on the mat", "the dog ran on the mat")
    assert tokens(tok, a)[1:7] == ["the", "cat", "sat", "on", "the", "mat"]
    assert a.labels == [K, K, D, C, K, K, K, X]
    assert a.targets == {3: ids(tok, "dog ran")}


@pytest.mark.parametrize(
    "hyp, ref, labels, target_pos, target",
    [
        ("i cat know", "i dog ran there know", [K, K, C, K, X], 2, "dog ran there"),  # 1 -> 3
        ("i cat sat mat know", "i dog know", [K, K, D, D, C, K, X], 4, "dog"),  # 3 -> 1
    ],
)
def test_substitution_runs_of_unequal_length(tok, hyp, ref, labels, target_pos, target):
    a = check_invariant(tok, hyp, ref)
    assert a.labels == labels
    assert a.targets == {target_pos: ids(tok, target)}


def test_asr_deletion_mid_sentence_goes_to_left_anchor(tok):
    a = check_invariant(tok, "i know you", "i really know you")
    assert a.labels == [K, C, K, K, X]
    assert a.targets == {1: ids(tok, "i really")}


def test_asr_deletion_at_the_end_goes_to_last_word(tok):
    a = check_invariant(tok, "i know", "i know you")
    assert a.labels == [K, K, C, X]
    assert a.targets == {2: ids(tok, "know you")}


def test_leading_words_missing_from_hypothesis_are_hosted_by_cls(tok):
    a = check_invariant(tok, "know you", "well i know you")
    assert a.labels == [C, K, K, X]
    assert a.targets == {0: ids(tok, "well i")}


def test_leading_asr_insertion_is_deleted(tok):
    a = check_invariant(tok, "oh i know", "i know")
    assert a.labels == [K, D, K, K, X]
    assert a.targets == {}


def test_cls_and_left_anchor_host_at_the_same_time(tok):
    a = check_invariant(tok, "know", "i know you")
    assert a.labels == [C, C, X]
    assert a.targets == {0: ids(tok, "i"), 1: ids(tok, "know you")}


def test_empty_hypothesis_cls_hosts_everything(tok):
    a = check_invariant(tok, "", "Hello there, zebra!")
    assert tokens(tok, a) == ["[CLS]", "[SEP]"]
    assert a.labels == [C, X]
    assert a.targets == {0: ids(tok, "hello there zebra")}


@pytest.mark.parametrize("ref", ["", "[LAUGHTER]", " ... "])
def test_empty_reference_deletes_everything(tok, ref):
    a = check_invariant(tok, "hello zebra", ref)
    assert tokens(tok, a)[1:-1] == ["hello"] + ids_tokens(tok, "zebra")
    assert a.labels == [K] + [D] * (len(a.input_ids) - 2) + [X]
    assert a.targets == {}


def ids_tokens(tok, text):
    return tok.convert_ids_to_tokens(ids(tok, text))


def test_both_empty(tok):
    a = check_invariant(tok, "[GARBAGE]", "")
    assert a.labels == [K, X] and a.targets == {}


def test_multi_subtoken_words(tok):
    # zebra, xylophone: KEEP on every piece; the run 'quokka emotion' -> 'banana': quokka DELETE
    # on every piece, emotion DELETE ... DELETE CHANGE (the last piece hosts).
    a = check_invariant(tok, "zebra quokka emotion xylophone", "zebra banana xylophone")
    n = {w: len(ids(tok, w)) for w in ("zebra", "quokka", "emotion", "xylophone")}
    assert min(n.values()) > 1
    expected = [K] + [K] * n["zebra"] + [D] * n["quokka"] + [D] * (n["emotion"] - 1) + [C]
    assert a.labels == expected + [K] * n["xylophone"] + [X]
    assert a.targets == {len(expected) - 1: ids(tok, "banana")}


def test_multi_subtoken_left_anchor_hosts_on_its_last_piece(tok):
    a = check_invariant(tok, "zebra you", "zebra really you")
    n = len(ids(tok, "zebra"))
    assert a.labels == [K] + [D] * (n - 1) + [C, K, X]
    assert a.targets == {n: ids(tok, "zebra really")}


def test_repeats(tok):
    a = check_invariant(tok, "no no no", "no")
    assert a.labels == [K, K, D, D, X]
    b = check_invariant(tok, "the the cat", "the cat the")
    assert b.labels == [K, K, D, C, X]
    assert b.targets == {3: ids(tok, "cat the")}


def test_apostrophe_words_compare_through_their_tokens(tok):
    a = check_invariant(tok, "i dont know", "I don\u2019t know")
    n = len(ids(tok, "dont"))
    assert a.labels == [K, K] + [D] * (n - 1) + [C, K, X]
    assert a.targets == {1 + n: ids(tok, "don't")}


def test_encode_hypothesis_matches_align_and_tokenizer(tok):
    hyp = "Hello, [LAUGHTER] quokka world!"
    expected = tok(normalize_text(hyp)).input_ids
    assert encode_hypothesis(hyp, tok) == expected
    assert align_transcripts(hyp, "anything", tok).input_ids == expected


def test_max_length_cuts_hypothesis_and_drops_cut_targets(tok):
    hyp, ref = "i cat know you sat", "i dog know you ran"
    full = align_transcripts(hyp, ref, tok)
    assert full.labels == [K, K, C, K, K, C, X] and not full.truncated
    cut = align_transcripts(hyp, ref, tok, max_length=5)
    assert cut.input_ids == full.input_ids[:4] + [tok.sep_token_id]
    assert cut.input_ids == tok(normalize_text(hyp), truncation=True, max_length=5).input_ids
    assert cut.labels == [K, K, C, K, X]
    assert cut.targets == {2: ids(tok, "dog")}
    assert cut.num_cut_targets == 1 and cut.truncated
    assert encode_hypothesis(hyp, tok, max_length=5) == cut.input_ids
    assert align_transcripts(hyp, ref, tok, max_length=50) == full
    with pytest.raises(ValueError, match="max_length"):
        align_transcripts(hyp, ref, tok, max_length=1)


def test_slow_tokenizer_is_rejected():
    class SlowTokenizer:  # stands for a Python (non-Rust) tokenizer: no character offsets
        is_fast = False

    with pytest.raises(TypeError, match="use_fast=True"):
        align_transcripts("a", "b", SlowTokenizer())


def test_reconstruct_needs_a_target_per_change():
    with pytest.raises(KeyError, match="position 1"):
        reconstruct(Alignment([2, 10, 3], [0, 2, -100], {}))


def test_full_correction_target(tok):
    assert full_correction_target("Hello, zebra! [LAUGHTER]", tok) == ids(tok, "hello zebra")
    assert full_correction_target("", tok) == []


# ---------------------------------------------------------------------- property-based tests

VOCAB = ["i", "you", "know", "the", "cat", "hello", "world", "don't", "i'm", "no"] + SPLIT_WORDS
word = st.sampled_from(VOCAB)
# Surface noise that normalisation must remove: case, punctuation, tags, curly apostrophes.
decorated = st.builds(
    lambda w, case, punct: (
        (w.upper() if case else w).replace("'", "\u2019" if punct else "'") + ("," if punct else "")
    ),
    word,
    st.booleans(),
    st.booleans(),
)


@st.composite
def hyp_ref_pair(draw):
    """A reference and a hypothesis made from it by keeps, substitutions, deletions, insertions
    and repeats; sometimes an unrelated hypothesis, sometimes an empty side."""
    ref = draw(st.lists(decorated, max_size=12))
    mode = draw(st.sampled_from(["edit", "edit", "edit", "random", "empty_hyp", "empty_ref"]))
    if mode == "random":
        return " ".join(draw(st.lists(decorated, max_size=12))), " ".join(ref)
    if mode == "empty_hyp":
        return draw(st.sampled_from(["", "[LAUGHTER]", " . "])), " ".join(ref)
    if mode == "empty_ref":
        return " ".join(ref), draw(st.sampled_from(["", "[BREATHING]"]))
    edits = draw(
        st.lists(
            st.tuples(st.sampled_from(["keep", "sub", "del", "ins", "rep"]), word),
            min_size=len(ref),
            max_size=len(ref),
        )
    )
    hyp = []
    for w, (op, other) in zip(ref, edits):
        hyp += {"keep": [w], "sub": [other], "del": [], "ins": [w, other], "rep": [w, w]}[op]
    return " ".join(hyp), " ".join(ref)


@pytest.mark.parametrize("tokenizer", ["tok", "bpe_tok"])  # WordPiece, byte-level BPE
@given(pair=hyp_ref_pair())
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_reconstruct_invariant_and_label_structure(request, tokenizer, pair):
    tok = request.getfixturevalue(tokenizer)
    hyp, ref = pair
    a = align_transcripts(hyp, ref, tok)
    ref_ids = tok(normalize_text(ref), add_special_tokens=False).input_ids
    assert reconstruct(a) == ref_ids
    assert a.input_ids == encode_hypothesis(hyp, tok) == tok(normalize_text(hyp)).input_ids
    assert len(a.labels) == len(a.input_ids)
    assert a.labels[-1] == IGNORE_INDEX and a.labels[0] in (K, C)
    assert set(a.labels[:-1]) <= set(AEDTag)
    assert sorted(a.targets) == [p for p, lab in enumerate(a.labels) if lab == C]
    # Gold labels turn the hypothesis into the reference's text.
    assert correct(a.input_ids, a.labels, a.targets, tok) == normalize_text(ref)


@given(hyp_ref_pair(), st.integers(min_value=2, max_value=12))
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_truncation_is_a_prefix_of_the_full_alignment(tok, pair, max_length):
    hyp, ref = pair
    full = align_transcripts(hyp, ref, tok)
    cut = align_transcripts(hyp, ref, tok, max_length=max_length)
    assert len(cut.input_ids) == min(len(full.input_ids), max_length)
    assert cut.input_ids[-1] == full.input_ids[-1] and cut.labels[-1] == IGNORE_INDEX
    keep = len(cut.input_ids) - 1
    assert cut.labels[:keep] == full.labels[:keep]
    assert cut.targets == {p: t for p, t in full.targets.items() if p < keep}
    assert cut.num_cut_targets == len(full.targets) - len(cut.targets)
    assert cut.truncated == (len(full.input_ids) > max_length)


# ------------------------------------------------------------- cost bounded by max_length


def _edited(rng, ref_words, vocab):
    """A hypothesis made from ``ref_words`` by local edits (an ASR with a 25 % word error rate)."""
    hyp = []
    for w in ref_words:
        op = rng.choices(["keep", "sub", "del", "ins"], weights=[75, 12, 7, 6])[0]
        hyp += {"keep": [w], "sub": [rng.choice(vocab)], "del": [],
                "ins": [w, rng.choice(vocab)]}[op]
    return hyp


def test_long_texts_align_in_bounded_time_and_memory(tok):
    """A 20,000-word reference against a 50,000-word hypothesis used to need ~9 GB (LCS table)."""
    import random
    import time
    import tracemalloc

    rng = random.Random(0)
    vocab = WHOLE_WORDS + SPLIT_WORDS
    ref = " ".join(rng.choice(vocab) for _ in range(20_000))
    hyp = " ".join(rng.choice(vocab) for _ in range(50_000))
    tracemalloc.start()
    try:
        start = time.perf_counter()
        a = align_transcripts(hyp, ref, tok, max_length=128)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 10 and peak < 64 * 2**20, (seconds, peak)  # measured: 1.3 s, 4 MB
    assert a.truncated and len(a.input_ids) == len(a.labels) == 128
    assert a.input_ids == encode_hypothesis(hyp, tok, max_length=128)
    assert sorted(a.targets) == [p for p, lab in enumerate(a.labels) if lab == C]


@pytest.mark.parametrize("seed", range(6))
def test_windowed_alignment_is_the_whole_alignment_on_long_transcripts(tok, seed):
    """Texts longer than the windows: the kept tokens get the labels of the whole alignment."""
    import random

    rng = random.Random(seed)
    vocab = VOCAB + WHOLE_WORDS
    ref_words = [rng.choice(vocab) for _ in range(400)]
    hyp, ref = " ".join(_edited(rng, ref_words, vocab)), " ".join(ref_words)
    full = align_transcripts(hyp, ref, tok)
    for max_length in (8, 40):
        cut = align_transcripts(hyp, ref, tok, max_length=max_length)
        keep = max_length - 1
        assert cut.input_ids == full.input_ids[:keep] + full.input_ids[-1:]
        assert cut.labels[:keep] == full.labels[:keep] and cut.labels[-1] == X
        assert cut.targets == {p: t for p, t in full.targets.items() if p < keep}
        assert cut.truncated


def test_a_target_running_past_the_reference_window_is_dropped(tok):
    """Short hypothesis, very long reference: the last word hosts words beyond the window."""
    tail = " ".join(["cat"] * 1000)
    a = align_transcripts("hello world", f"hello world {tail}", tok, max_length=8)
    assert a.labels == [K, K, C, X] and a.targets == {} and a.num_cut_targets == 1
    assert a.truncated  # reconstruct cannot give the whole reference
    # A reference that fits in the window keeps the target, whole.
    b = align_transcripts("hello world", "hello world cat cat", tok, max_length=8)
    assert b.labels == [K, K, C, X] and b.targets == {2: ids(tok, "world cat cat")}
    assert not b.truncated and reconstruct(b) == ids(tok, "hello world cat cat")


def test_byte_level_bpe_words_compare_through_their_ids(bpe_tok):
    # 'know' opens the hypothesis (no leading space) but not the reference ('Ġknow'): the two
    # are different ids, so the word is rewritten instead of kept.
    a = align_transcripts("know you", "i know you", bpe_tok)
    pieces = bpe_tok.convert_ids_to_tokens(a.input_ids)
    n = len(pieces) - 3  # pieces of the leading 'know'
    assert "".join(pieces[1 : 1 + n]) == "know" and pieces[-2:] == ["Ġyou", "</s>"]
    assert a.labels == [K] + [D] * (n - 1) + [C, K, X]
    assert bpe_tok.convert_ids_to_tokens(a.targets[n]) == ["i", "Ġknow"]


# ----------------------------------------------------------------------- decoder batches


def test_batch_correction_targets_layout():
    cb = batch_correction_targets([{5: [7, 8, 9]}, {}, {2: [4], 0: [6, 6]}], 2, 3, 0, max_len=16)
    assert cb.batch_index.tolist() == [0, 2, 2]
    assert cb.positions.tolist() == [5, 0, 2]  # sorted by position within an utterance
    assert cb.decoder_input.tolist() == [[2, 7, 8, 9], [2, 6, 6, 0], [2, 4, 0, 0]]
    assert cb.decoder_labels.tolist() == [[7, 8, 9, 3], [6, 6, 3, -100], [4, 3, -100, -100]]
    assert cb.decoder_pad_mask.tolist() == [
        [False] * 4,
        [False, False, False, True],
        [False, False, True, True],
    ]
    assert cb.num_truncated == 0 and cb.num_sequences == 3
    assert cb.decoder_input.dtype == cb.decoder_labels.dtype == cb.positions.dtype == torch.long
    assert cb.decoder_pad_mask.dtype == torch.bool
    # The pad mask is exactly where the labels are padding.
    assert torch.equal(cb.decoder_pad_mask, cb.decoder_labels == -100)


def test_whole_utterance_targets_are_capped_at_max_tokens_not_aec_max_len(tok):
    """Table IV C(1): the whole reference (18 tokens > aec_max_len=16) keeps its [EOS]."""
    reference = " ".join(WHOLE_WORDS * 2)
    target = full_correction_target(reference, tok)
    assert len(target) == 18
    args = (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
    full = batch_correction_targets([{0: target}], *args, max_len=128)
    assert full.num_truncated == 0
    assert full.decoder_labels[0].tolist() == target + [tok.sep_token_id]
    cut = batch_correction_targets([{0: target}, {0: target[:3]}], *args, max_len=len(target) - 1)
    assert cut.num_truncated == 1  # counted per sequence
    assert cut.decoder_labels[0, -1] == IGNORE_INDEX
    assert tok.sep_token_id not in cut.decoder_labels[0].tolist()


def test_batch_correction_targets_caps_length_and_counts():
    cb = batch_correction_targets([{1: list(range(10, 30))}, {1: [5]}], 2, 3, 0, max_len=4)
    assert cb.num_truncated == 1
    assert cb.decoder_input.shape == (2, 5)
    assert cb.decoder_input[0].tolist() == [2, 10, 11, 12, 13]
    assert cb.decoder_labels[0].tolist() == [10, 11, 12, 13, -100]  # no [EOS] inside a cut span
    assert cb.decoder_labels[1].tolist() == [5, 3, -100, -100, -100]
    with pytest.raises(ValueError, match="max_len"):
        batch_correction_targets([{1: [5]}], 2, 3, 0, max_len=0)


@pytest.mark.parametrize("targets", [[], [{}], [{}, {}]])
def test_batch_correction_targets_empty(targets):
    cb = batch_correction_targets(targets, 2, 3, 0)
    assert cb.decoder_input.shape == cb.decoder_labels.shape == cb.decoder_pad_mask.shape == (0, 1)
    assert cb.batch_index.shape == cb.positions.shape == (0,)
    assert cb.num_truncated == 0 and cb.num_sequences == 0
    assert cb.to("cpu").decoder_input.shape == (0, 1)


def test_batch_from_alignments_and_full_targets(tok):
    aligns = [align_transcripts("know", "i know you", tok), align_transcripts("hi", "hi", tok)]
    cb = batch_correction_targets(
        [a.targets for a in aligns], tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    )
    assert cb.batch_index.tolist() == [0, 0] and cb.positions.tolist() == [0, 1]
    assert cb.decoder_labels[1, :3].tolist() == ids(tok, "know you") + [tok.sep_token_id]
    full = batch_correction_targets(
        [{0: full_correction_target("i know you", tok)}],
        tok.cls_token_id,
        tok.sep_token_id,
        tok.pad_token_id,
    )
    assert full.positions.tolist() == [0]
    assert full.decoder_input[0].tolist() == [tok.cls_token_id] + ids(tok, "i know you")


# ------------------------------------------------------------------------------- correct


def test_correct_applies_predictions(tok):
    a = align_transcripts("i cat know", "i dog know", tok)
    hyp = a.input_ids + [tok.pad_token_id] * 3  # padded row of a batch
    labels = a.labels + [IGNORE_INDEX] * 3
    assert correct(hyp, labels, a.targets, tok) == "i dog know"
    # spans from the decoder may carry BOS/EOS/padding: never emitted
    span = {2: [tok.cls_token_id] + ids(tok, "sat mat") + [tok.sep_token_id, tok.pad_token_id]}
    assert correct(hyp, labels, span, tok) == "i sat mat know"
    # DELETE drops; CHANGE without a decoded span keeps its token; tensors are accepted
    assert correct(torch.tensor(hyp), torch.tensor([K, D, C, K, X, 0, 0, 0]), {}, tok) == "cat know"


def test_correct_cls_host(tok):
    a = align_transcripts("know", "well i know", tok)
    assert correct(a.input_ids, a.labels, a.targets, tok) == "well i know"
    assert correct(a.input_ids, [K, K, X], {}, tok) == "know"


def test_correct_never_touches_special_tokens(tok):
    a = align_transcripts("cat sat", "cat sat", tok)  # [CLS] cat sat [SEP]
    hyp = a.input_ids + [tok.pad_token_id] * 2  # a padded row
    dog = ids(tok, "dog")
    spans = {p: dog for p in range(len(hyp))}
    # CHANGE everywhere: the words change, [SEP] and padding stay as they are (nothing emitted);
    # the leading [CLS] hosts words before the first one (docs/design.md §4).
    assert correct(hyp, [C] * len(hyp), spans, tok) == "dog dog dog"
    without_cls = {p: s for p, s in spans.items() if p != 0}
    assert correct(hyp, [C] * len(hyp), without_cls, tok) == "dog dog"
    # DELETE on specials changes nothing; a special token in the middle is never a host
    assert correct(hyp, [D, K, K, D, D, D], {}, tok) == "cat sat"
    mid = [tok.cls_token_id, ids(tok, "cat")[0], tok.sep_token_id, ids(tok, "sat")[0]]
    assert correct(mid, [K, K, C, K], {2: dog}, tok) == "cat sat"


# ---------------------------------------------------------------------------- statistics


def test_word_error_rate_matches_jiwer():
    pairs = [("the cat sat", "The cat sat on the mat."), ("a dog", "the dog"), ("hello", "Hello!")]
    expected = jiwer.wer(
        [normalize_text(r) for _, r in pairs], [normalize_text(h) for h, _ in pairs]
    )
    assert word_error_rate(pairs) == pytest.approx(expected)
    assert word_error_rate([("extra words", "")]) is None  # no reference words
    assert word_error_rate([("x", ""), ("a b", "a b")]) == pytest.approx(0.5)  # insertion counted


def test_label_statistics_counts(tok):
    pairs = [("i know", "i know"), ("you", "yes you do"), ("zebra", "")]
    stats = label_statistics(pairs, tok, max_len=1)
    n_zebra = len(ids(tok, "zebra"))
    # [CLS] i know | [CLS]=C you=C | [CLS] zebra pieces=D
    assert (stats["keep"], stats["delete"], stats["change"]) == (4, n_zebra, 2)
    assert stats["num_tokens"] == 6 + n_zebra
    assert stats["change_share"] == pytest.approx(2 / (6 + n_zebra))
    assert stats["num_targets"] == 2
    assert stats["num_truncated_targets"] == 1  # 'you do' has 2 tokens > max_len 1
    assert stats["wer"] == pytest.approx(3 / 5)  # 2 deletions + 1 insertion over 5 words
    assert stats["num_utterances"] == 3


def test_save_label_statistics(tok, tmp_path, capsys):
    stats = label_statistics([("i cat know", "i dog know")], tok)
    path = tmp_path / "stats" / "label_statistics.json"
    table = save_label_statistics(stats, path)
    assert json.loads(path.read_text()) == stats
    assert [p.name for p in path.parent.iterdir()] == ["label_statistics.json"]  # no temp file left
    out = capsys.readouterr().out
    assert "change" in out and "corpus WER" in out and table in out


def test_manifest_label_statistics(tok, tmp_path, capsys):
    manifest = {
        "u1": {"transcript": "I know.", "hypothesis": "i know", "session": "Session1"},
        "u2": {"transcript": "yes", "hypothesis": None, "session": "Session1"},
    }
    for name in ("train.json", "test.json"):  # u1 appears twice, counted once
        (tmp_path / name).write_text(json.dumps(manifest))
    stats = manifest_label_statistics(
        [tmp_path / "train.json", tmp_path / "test.json"], tok, verbose=False
    )
    assert stats["num_utterances"] == 1 and stats["keep"] == 3 and stats["wer"] == 0.0
    assert json.loads((tmp_path / "label_statistics.json").read_text()) == stats
    (tmp_path / "none.json").write_text(json.dumps({"u2": manifest["u2"]}))
    with pytest.raises(ValueError, match="none.json"):
        manifest_label_statistics([tmp_path / "none.json"], tok)
