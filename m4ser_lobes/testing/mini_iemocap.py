"""A tiny synthetic corpus in the exact on-disk format of IEMOCAP, for tests and the demo.

``m4ser-mini-corpus iemocap OUT_DIR [--seed N] [--utterances-per-dialog N] [--speech espeak]`` (or
``python -m m4ser_lobes.testing.mini_iemocap ...``) writes ``OUT_DIR/IEMOCAP_full_release/`` (the tree of
the real release, see ``recipes/IEMOCAP/iemocap_prepare.py``) and ``OUT_DIR/hypotheses.json``, a
fake ASR hypothesis cache in the format of ``m4ser_lobes.text.asr`` (docs/CONTRACTS.md). It takes well
under a second and prints a one-line summary. The same command writes the MELD look-alike
(``m4ser-mini-corpus meld OUT_DIR``, :mod:`m4ser_lobes.testing.mini_meld`) and a tiny random HuBERT
and BERT with ``OUT_DIR/m4ser_tiny.yaml`` to train on either (``m4ser-mini-corpus model OUT_DIR``,
:mod:`m4ser_lobes.testing.tiny_model`); README.md's "Try every command without the licensed
corpora" runs every recipe on them. ``--speech espeak`` has espeak-ng speak the words
(:mod:`m4ser_lobes.testing.speech`), so that a real ASR can transcribe the clips; by default each
utterance is the tone described below.

What the data prep must cope with, all present:

* ``EmoEvaluation/<dialog>.txt`` with the ``%`` header line, tab-separated block headers
  ``[START - END]\\tUTT_ID\\tEMO\\t[V, A, D]``, categorical (``C-E2:``) and dimensional
  (``A-E3:``) evaluator lines, blank lines between blocks; a ``Categorical/`` subfolder and a
  macOS ``._`` dot-file next to the ``.txt`` files; one dialog with CRLF line ends;
* ``transcriptions/<dialog>.txt`` lines ``UTT_ID [006.2901-008.2357]: Text.`` with capitals,
  punctuation and bracketed tags (``[LAUGHTER]``), one line that does not match that pattern
  and one ``..._MXX0`` turn that has no EmoEvaluation block;
* both ``hap`` and ``exc`` (merged into one class), labels to be filtered (``fru``, ``xxx``,
  ``sur``, ``oth``, ``fea``, ``dis``) and the odd dialog ids ``Ses03M_impro05a`` /
  ``Ses05M_script01_1b`` in which character 15 of an utterance id is not the gender letter;
* ``sentences/wav/<dialog>/<utt>.wav``: 16 kHz mono 16-bit PCM, 0.8-2.0 s;
* ASR hypotheses with substitutions, deletions, insertions (leading and trailing too) and
  exactly one empty hypothesis, about 20 % WER.

The corpus is learnable, and only multimodally (cf. Table IV A of the paper): the **audio
carries arousal** (ang and hap: harmonic tone at 500-900 Hz, loud, fast syllable rate; neu and
sad: 150-250 Hz, soft, slow) and the **words carry valence** (ang and sad use negative words,
hap and neu positive/neutral ones). Each modality alone separates two groups of two classes
(about 50 % four-class accuracy); together they determine the class. A little ambiguity keeps
it honest: background noise, pitch drift, some sentences with a word of the opposite valence,
and the ASR errors.

Example
-------
>>> corpus = generate_iemocap(getfixture("tmp_path"), seed=0, utterances_per_dialog=4)
>>> corpus.root.name, corpus.hypotheses.name
('IEMOCAP_full_release', 'hypotheses.json')
>>> kept = [u for u in corpus.utterances.values() if u.emotion is not None]
>>> len(kept), sorted({u.emotion for u in kept})
(80, ['ang', 'hap', 'neu', 'sad'])
>>> corpus.utterances["Ses03M_impro05a_F000"].gender
'F'
"""

from __future__ import annotations

import json
import sys
import wave
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from m4ser_lobes.testing.speech import Speaker, check_speech
from m4ser_lobes.utils.fileio import atomic_write_json

SAMPLE_RATE = 16000
RELEASE_NAME = "IEMOCAP_full_release"

# Four dialogs per session: impro and script, with the two kinds of odd ids of the release.
DIALOGS = {
    1: ("Ses01F_impro01", "Ses01M_impro04", "Ses01F_script01_1", "Ses01M_script02_2"),
    2: ("Ses02F_impro02", "Ses02M_impro06", "Ses02F_script01_3", "Ses02M_script03_1"),
    3: ("Ses03F_impro03", "Ses03M_impro05a", "Ses03M_impro08b", "Ses03F_script02_1"),
    4: ("Ses04F_impro07", "Ses04M_impro02", "Ses04F_script03_2", "Ses04M_script01_2"),
    5: ("Ses05F_impro05", "Ses05M_impro08", "Ses05F_script02_2", "Ses05M_script01_1b"),
}
CRLF_DIALOG = "Ses02F_impro02"  # written with Windows line ends

# The four target classes; the ``hap`` class is written as ``hap`` or ``exc`` on disk.
CLASSES = ("neu", "ang", "sad", "hap")
HIGH_AROUSAL = {"ang", "hap"}  # carried by the audio
NEGATIVE_VALENCE = {"ang", "sad"}  # carried by the words
FILTERED_LABELS = ("fru", "xxx", "sur", "oth", "fea", "dis")
CATEGORY_NAMES = {
    "neu": "Neutral state", "ang": "Anger", "sad": "Sadness", "hap": "Happiness",
    "exc": "Excited", "fru": "Frustration", "sur": "Surprise", "fea": "Fear",
    "dis": "Disgust", "oth": "Other",
}
# Rough evaluator scores (valence, activation, dominance) per label, 1..5.
VAD_CENTRES = {
    "neu": (3, 2, 3), "ang": (2, 4, 4), "sad": (2, 2, 2), "hap": (4, 3, 3), "exc": (4, 4, 3),
    "fru": (2, 3, 3), "sur": (4, 4, 3), "fea": (2, 3, 2), "dis": (2, 3, 3), "oth": (3, 3, 3),
    "xxx": (3, 3, 3),
}

POSITIVE_WORDS = ("good", "great", "nice", "fine", "lovely", "perfect", "wonderful", "happy")
NEGATIVE_WORDS = ("bad", "awful", "terrible", "horrible", "wrong", "unfair", "miserable", "sick")
# ``{v}`` takes a word of the class's valence, ``{w}`` one of the same valence or, sometimes,
# of the opposite one (ambiguity). 4-8 words, 9 with a leading filler.
TEMPLATES = (
    "i think that is {v}",
    "oh this is so {v}",
    "you know it was {v}",
    "well that was really {v} yesterday",
    "i feel {v} about the whole thing",
    "it is just {v} and {w}",
    "we had a {v} time at the party",
    "what a {v} day",
    "my job is {v} right now",
    "they said the news was {v}",
    "honestly the trip was {v}",
    "the food here is {v} and {w}",
)
FILLERS = ("well", "so", "okay", "yeah")
TAGS = ("[LAUGHTER]", "[BREATHING]", "[GARBAGE]")
OPPOSITE_VALENCE_PROB = 0.25  # for ``{w}`` slots
FILLER_PROB = 0.3
TAG_PROB = 0.06

# Fake ASR: near-homophones, otherwise a frequent short word; insertions are hesitations.
CONFUSIONS = {
    "fine": "find", "nice": "mice", "great": "grate", "good": "could", "bad": "bat",
    "wrong": "long", "sick": "stick", "awful": "offal", "the": "a", "is": "was", "was": "is",
    "that": "the", "it": "in", "i": "a", "you": "your", "think": "thing", "feel": "fill",
    "day": "they", "time": "tyme", "trip": "trap", "job": "jog", "food": "foot", "news": "use",
    "party": "parity", "really": "rarely", "so": "sew", "what": "but",
}
INSERTIONS = ("uh", "um", "and", "the", "so", "yeah", "oh")
SUBSTITUTION_PROB = 0.09
DELETION_PROB = 0.05
INSERTION_PROB = 0.035

# Words deliberately left out of :func:`corpus_words`, so a vocabulary built from it splits them
# into WordPiece sub-tokens (besides the ASR confusion words, which are left out too).
SPLIT_WORDS = ("wonderful", "miserable", "yesterday", "honestly")


class MiniUtterance(NamedTuple):
    """Ground truth of one generated utterance (what the data prep must recover)."""

    utt_id: str
    session: int
    dialog: str
    gender: str
    label: str  # code written in EmoEvaluation (hap, exc, fru, ...)
    emotion: str | None  # merged 4-class label, None when prep must filter it
    start: float
    end: float
    num_samples: int
    transcript: str  # raw line text, with capitals, punctuation and tags
    reference: str  # normalised words
    hypothesis: str | None  # fake ASR output; None for filtered utterances


class MiniCorpus(NamedTuple):
    """What :func:`generate_iemocap` wrote."""

    root: Path  # .../IEMOCAP_full_release
    hypotheses: Path  # hypothesis cache (JSON)
    utterances: dict  # utt_id -> MiniUtterance


def corpus_words():
    """Return the words a tiny WordPiece vocabulary should hold whole, sorted.

    Every word of the reference transcripts except :data:`SPLIT_WORDS`; ASR-only words
    (confusions, hesitations) are not included either, so they split into sub-tokens.

    Returns
    -------
    list of str

    Example
    -------
    >>> words = corpus_words()
    >>> "terrible" in words, "great" in words, "wonderful" in words, "grate" in words
    (True, True, False, False)
    """
    words = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS) | set(FILLERS)
    for template in TEMPLATES:
        words.update(w for w in template.split() if not w.startswith("{"))
    return sorted(words - set(SPLIT_WORDS))


def generate_iemocap(out_dir, seed=0, utterances_per_dialog=10, filtered_per_dialog=2,
                     speech="tone"):
    """Write the synthetic IEMOCAP release and its hypothesis cache into ``out_dir``.

    Each session holds 4 dialogs of ``utterances_per_dialog`` kept utterances (exactly
    ``utterances_per_dialog`` of each class per session, ``hap`` written as hap or exc) plus
    ``filtered_per_dialog`` utterances with labels the prep must drop.

    Arguments
    ---------
    out_dir : str or Path
        Output folder (created); receives ``IEMOCAP_full_release/`` and ``hypotheses.json``.
    seed : int
        Everything (labels, order, audio, words, ASR errors) is a function of the seed.
    utterances_per_dialog : int
        Kept utterances per dialog (default 10: 200 in all).
    filtered_per_dialog : int
        Utterances per dialog labelled fru/xxx/sur/oth/fea/dis.
    speech : str
        ``"tone"`` (default: the harmonic tone of :func:`_synthesize`) or ``"espeak"``: each
        utterance's words spoken by espeak-ng with its arousal's prosody
        (:mod:`m4ser_lobes.testing.speech`), the times following the spoken length.

    Returns
    -------
    MiniCorpus
    """
    if utterances_per_dialog < 1 or filtered_per_dialog < 0:
        raise ValueError(
            "utterances_per_dialog must be >= 1 and filtered_per_dialog >= 0, got "
            f"{utterances_per_dialog} and {filtered_per_dialog}"
        )
    check_speech(speech)
    out_dir = Path(out_dir)
    root = out_dir / RELEASE_NAME
    rng = np.random.default_rng(seed)
    # espeak: the audio is made while the turns are drawn (their times follow it), from its own
    # random stream; the tone corpus (speech="tone") is written exactly as before.
    speaker = Speaker(np.random.default_rng([seed, 2])) if speech == "espeak" else None
    audios = {} if speaker else None
    utterances = {}
    need_laughter = True
    (root / "Documentation").mkdir(parents=True, exist_ok=True)
    (root / "Documentation" / "README.txt").write_text(
        f"Synthetic IEMOCAP look-alike written by m4ser_lobes.testing.mini_iemocap (seed {seed}).\n"
        + (f"Speech: espeak-ng ({speaker.version}).\n" if speaker else "")
    )
    for session, dialogs in DIALOGS.items():
        dialog_dir = root / f"Session{session}" / "dialog"
        for position, dialog in enumerate(dialogs):
            # Rotating the class order over the 4 dialogs balances every session exactly.
            labels = [CLASSES[(i + position) % 4] for i in range(utterances_per_dialog)]
            labels += [FILTERED_LABELS[rng.integers(len(FILTERED_LABELS))]
                       for _ in range(filtered_per_dialog)]
            labels = [labels[i] for i in rng.permutation(len(labels))]
            exc_next = bool(rng.integers(2))
            for i, label in enumerate(labels):
                if label == "hap":  # alternate hap / exc inside a dialog
                    labels[i], exc_next = ("exc" if exc_next else "hap"), not exc_next
            dialog_utts = _make_dialog(rng, session, dialog, labels, need_laughter,
                                       speaker, audios)
            need_laughter = need_laughter and not any(
                "[LAUGHTER]" in u.transcript and u.emotion for u in dialog_utts)
            utterances.update((u.utt_id, u) for u in dialog_utts)
            _write_dialog(root / f"Session{session}", dialog, dialog_utts, rng, audios)
        _write_decoys(dialog_dir / "EmoEvaluation", dialogs[0])
    utterances = _add_hypotheses(utterances, np.random.default_rng([seed, 1]))
    hypotheses = out_dir / "hypotheses.json"
    atomic_write_json(hypotheses, _hypothesis_cache(utterances))
    return MiniCorpus(root, hypotheses, utterances)


def _make_dialog(rng, session, dialog, labels, need_laughter, speaker=None, audios=None):
    """Draw speakers, times, words and the raw transcript of every turn of one dialog.

    With a ``speaker`` (:class:`m4ser_lobes.testing.speech.Speaker`) each turn's words are
    spoken into ``audios[utt_id]`` and its times follow the spoken length.
    """
    counters = Counter()
    gender = "FM"[rng.integers(2)]
    time = round(float(rng.uniform(1.0, 4.0)), 4)
    utts = []
    for label in labels:
        utt_id = f"{dialog}_{gender}{counters[gender]:03d}"
        counters[gender] += 1
        num_samples = int(rng.integers(int(0.8 * SAMPLE_RATE), int(2.0 * SAMPLE_RATE) + 1))
        start = time
        emotion = {"exc": "hap"}.get(label, label) if label in CLASSES + ("exc",) else None
        valence_class = emotion or CLASSES[rng.integers(4)]  # filtered turns: any valence
        words = _sentence(rng, negative=valence_class in NEGATIVE_VALENCE)
        if speaker is not None:
            audio = speaker(" ".join(words), _is_high_arousal(speaker.rng, label), gender)
            audios[utt_id], num_samples = audio, len(audio)
        end = round(start + num_samples / SAMPLE_RATE, 4)
        force_tag = need_laughter and emotion is not None
        need_laughter = need_laughter and not force_tag
        utts.append(MiniUtterance(
            utt_id, session, dialog, gender, label, emotion, start, end, num_samples,
            _render(rng, words, force_tag), " ".join(words), None,
        ))
        time = round(end + float(rng.uniform(0.3, 2.0)), 4)
        gender = {"F": "M", "M": "F"}[gender] if rng.random() < 0.8 else gender
    return utts


def _sentence(rng, negative):
    """Return the normalised words of one sentence whose valence words are ``negative``."""
    same, other = (NEGATIVE_WORDS, POSITIVE_WORDS) if negative else (POSITIVE_WORDS, NEGATIVE_WORDS)
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    words = []
    for slot in template.split():
        if slot == "{v}":
            words.append(same[rng.integers(len(same))])
        elif slot == "{w}":
            pool = other if rng.random() < OPPOSITE_VALENCE_PROB else same
            words.append(pool[rng.integers(len(pool))])
        else:
            words.append(slot)
    if rng.random() < FILLER_PROB and words[0] not in FILLERS + ("oh", "well"):
        words.insert(0, FILLERS[rng.integers(len(FILLERS))])
    return words


def _render(rng, words, force_tag=False):
    """Turn normalised words into a raw IEMOCAP-style line: capitals, punctuation, tags.

    >>> _render(np.random.default_rng(0), ["well", "i", "think", "so"], force_tag=True)
    'Well, I think so [LAUGHTER]?'
    """
    raw = ["I" if w == "i" else w for w in words]
    raw[0] = raw[0][0].upper() + raw[0][1:]
    if words[0] in FILLERS + ("oh",) and len(raw) > 1:
        raw[0] += ","
    tag = "[LAUGHTER]" if force_tag else None
    if tag is None and rng.random() < TAG_PROB:
        tag = TAGS[rng.integers(len(TAGS))]
    if tag is not None:
        raw.insert(int(rng.integers(1, len(raw) + 1)), tag)
    return " ".join(raw) + (".", ".", "?", "!")[rng.integers(4)]


def _synthesize(rng, high_arousal, gender, num_samples):
    """Return int16 audio: a drifting harmonic tone with syllable-rate envelope and noise.

    Arousal sets the pitch band, loudness and syllable rate; the speaker's gender shifts the
    pitch a little; nothing depends on valence.
    """
    t = np.arange(num_samples, dtype=np.float32) / SAMPLE_RATE  # float32: twice as fast
    if high_arousal:
        f0, amplitude, rate = rng.uniform(500, 900), rng.uniform(0.35, 0.6), rng.uniform(6, 8)
    else:
        f0, amplitude, rate = rng.uniform(150, 250), rng.uniform(0.08, 0.18), rng.uniform(2.5, 4)
    f0 *= 1.15 if gender == "F" else 1.0
    drift = 1 + 0.04 * np.sin(np.float32(2 * np.pi * rng.uniform(0.5, 1.5)) * t
                              + np.float32(rng.uniform(0, 2 * np.pi)))
    phase = np.mod(2 * np.pi * np.cumsum(f0 * drift, dtype=np.float64) / SAMPLE_RATE, 2 * np.pi)
    phase = phase.astype(np.float32)
    weights = np.array([1.0, rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.3)])  # f0 dominates
    tone = sum(np.float32(w) * np.sin((h + 1) * phase) for h, w in enumerate(weights))
    tone /= np.float32(weights.sum())
    syllables = np.abs(np.sin(np.float32(np.pi * rate) * t + np.float32(rng.uniform(0, np.pi))))
    envelope = np.float32(amplitude) * (0.55 + 0.45 * syllables)
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    noise_level = np.float32(rng.uniform(0.005, 0.02))
    noise = rng.standard_normal(num_samples, dtype=np.float32) * noise_level
    audio = np.clip(envelope * tone * fade + noise, -1.0, 1.0)
    return (audio * 32767).astype(np.int16)


def _write_dialog(session_dir, dialog, utts, rng, audios=None):
    """Write the EmoEvaluation, transcription and sentence wav files of one dialog (the audio:
    synthesised here, or ``audios[utt_id]`` when given)."""
    newline = "\r\n" if dialog == CRLF_DIALOG else "\n"
    evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    transcription = []
    wav_dir = session_dir / "sentences" / "wav" / dialog
    wav_dir.mkdir(parents=True, exist_ok=True)
    for u in utts:
        evaluation += _evaluation_block(rng, u) + [""]
        transcription.append(f"{u.utt_id} [{u.start:08.4f}-{u.end:08.4f}]: {u.transcript}")
        if audios is None:
            audio = _synthesize(rng, _is_high_arousal(rng, u.label), u.gender, u.num_samples)
        else:
            audio = audios[u.utt_id]
        with wave.open(str(wav_dir / f"{u.utt_id}.wav"), "wb") as f:  # 16-bit PCM
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(SAMPLE_RATE)
            f.writeframes(audio.astype("<i2").tobytes())
    if dialog == DIALOGS[u.session][0]:
        # A turn the evaluators skipped (no block, no sentence wav) and a non-matching line.
        last = utts[-1]
        transcription.append(
            f"{dialog}_MXX0 [{last.end + 0.5:08.4f}-{last.end + 1.5:08.4f}]: Hmm."
        )
        transcription.append("M: [BREATHING]")
    for folder, lines in (("EmoEvaluation", evaluation), ("transcriptions", transcription)):
        path = session_dir / "dialog" / folder / f"{dialog}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(newline.join(lines) + newline)
    (session_dir / "dialog" / "wav").mkdir(exist_ok=True)  # full-dialog wavs: not written


def _is_high_arousal(rng, label):
    """Arousal of the audio: by class for kept labels, random for the filtered ones."""
    if label in ("hap", "exc", "ang", "neu", "sad"):
        return label in HIGH_AROUSAL or label == "exc"
    return bool(rng.integers(2))


def _evaluation_block(rng, u):
    """Return the lines of one EmoEvaluation block: header, categorical and dimensional lines."""
    centre = np.array(VAD_CENTRES[u.label])
    scores = np.clip(centre + rng.integers(-1, 2, size=(int(rng.integers(2, 4)), 3)), 1, 5)
    v, a, d = scores.mean(axis=0)
    lines = [f"[{u.start:.4f} - {u.end:.4f}]\t{u.utt_id}\t{u.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]"]
    others = [c for c in CATEGORY_NAMES if c != u.label]
    for k in range(3):  # evaluators E2..E4 agree on the label, except for xxx (no majority)
        label = others[rng.integers(len(others))] if u.label == "xxx" else u.label
        lines.append(f"C-E{k + 2}:\t{CATEGORY_NAMES[label]};\t()")
    self_label = others[rng.integers(len(others))] if rng.random() < 0.5 else u.label
    note = "(curious)" if self_label == "oth" else "()"
    lines.append(f"C-{u.gender}1:\t{CATEGORY_NAMES.get(self_label, 'Other')};\t{note}")
    for k, (sv, sa, sd) in enumerate(scores):
        lines.append(f"A-E{k + 2}:\tval {sv}; act {sa}; dom  {sd};\t()")
    lines.append(f"A-{u.gender}1:\tval {centre[0]}; act {centre[1]}; dom  {centre[2]};\t()")
    return lines


def _write_decoys(evaluation_dir, dialog):
    """Files that a prep must not read: a subfolder of per-evaluator files and a dot-file."""
    categorical = evaluation_dir / "Categorical"
    categorical.mkdir(exist_ok=True)
    (categorical / f"{dialog}_e2_cat.txt").write_text(f"{dialog}_F000 :Neutral state; ()\n")
    (evaluation_dir / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")


def _add_hypotheses(utterances, rng):
    """Fill in fake ASR hypotheses for the kept utterances (sorted ids, one rng stream).

    Exactly one hypothesis is empty; one starts and one ends with an insertion.
    """
    kept = sorted(k for k, u in utterances.items() if u.emotion is not None)
    empty, leading, trailing = (kept[i] for i in rng.choice(len(kept), size=3, replace=False))
    for utt_id in kept:
        words = utterances[utt_id].reference.split()
        hyp = _corrupt(rng, words)
        if utt_id == leading:
            hyp.insert(0, INSERTIONS[rng.integers(len(INSERTIONS))])
        if utt_id == trailing:
            hyp.append(INSERTIONS[rng.integers(len(INSERTIONS))])
        if utt_id == empty:
            hyp = []
        utterances[utt_id] = utterances[utt_id]._replace(hypothesis=" ".join(hyp))
    return utterances


def _corrupt(rng, words):
    """Apply seeded substitutions, deletions and insertions to a list of words.

    >>> _corrupt(np.random.default_rng(0), "i think that is great".split())
    ['i', 'thing', 'that', 'is', 'great', 'yeah']
    """
    out = []
    if rng.random() < INSERTION_PROB:
        out.append(INSERTIONS[rng.integers(len(INSERTIONS))])
    for word in words:
        r = rng.random()
        if r < SUBSTITUTION_PROB:
            out.append(CONFUSIONS.get(word, INSERTIONS[rng.integers(len(INSERTIONS))]))
        elif r >= SUBSTITUTION_PROB + DELETION_PROB:
            out.append(word)
        if rng.random() < INSERTION_PROB:
            out.append(INSERTIONS[rng.integers(len(INSERTIONS))])
    return out


def _hypothesis_cache(utterances):
    """Build the cache object of docs/CONTRACTS.md (model, wer, wer_per_split, ...)."""
    import jiwer

    kept = sorted((u for u in utterances.values() if u.emotion is not None),
                  key=lambda u: u.utt_id)
    per_split = {}
    for session in sorted({u.session for u in kept}):
        split = [u for u in kept if u.session == session]
        per_split[str(session)] = round(
            jiwer.wer([u.reference for u in split], [u.hypothesis for u in split]), 4)
    return {
        "model": "synthetic (m4ser_lobes.testing.mini_iemocap)",
        "wer": round(jiwer.wer([u.reference for u in kept], [u.hypothesis for u in kept]), 4),
        "wer_per_split": per_split,
        "num_utterances": len(kept),
        "hypotheses": {u.utt_id: u.hypothesis for u in kept},
    }


def build_parser():
    """The ``m4ser-mini-corpus`` argument parser: ``iemocap``, ``meld`` and ``model`` subcommands."""
    from m4ser_lobes.testing import mini_meld
    from m4ser_lobes.testing.speech import SPEECH_HELP, SPEECH_KINDS
    from m4ser_lobes.utils.cli import HelpFormatter, command_parser

    parser = command_parser(
        "m4ser-mini-corpus",
        "m4ser_lobes.testing.mini_iemocap",
        "Write a tiny synthetic corpus in the exact on-disk format of a real one (iemocap, "
        "meld), or the tiny random encoders and model YAML to train on it (model).",
    )
    sub = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    iemocap = sub.add_parser(
        "iemocap",
        formatter_class=HelpFormatter,
        help="IEMOCAP_full_release look-alike + hypotheses.json",
        description="Write OUT_DIR/IEMOCAP_full_release/ and OUT_DIR/hypotheses.json.",
    )
    iemocap.add_argument("out_dir", type=Path, help="output folder (created)")
    iemocap.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    iemocap.add_argument(
        "--utterances-per-dialog", type=int, default=10, help="kept utterances per dialog"
    )
    iemocap.add_argument(
        "--filtered-per-dialog",
        type=int,
        default=2,
        help="extra utterances per dialog with labels the data prep filters out (fru, xxx ...)",
    )
    iemocap.add_argument("--speech", choices=SPEECH_KINDS, default="tone", help=SPEECH_HELP)
    meld = sub.add_parser(
        "meld",
        formatter_class=HelpFormatter,
        help="MELD.Raw look-alike (CSVs, mp4 clips) + hypotheses.json",
        description="Write OUT_DIR/MELD.Raw/ and OUT_DIR/hypotheses.json.",
    )
    mini_meld.add_arguments(meld)
    model = sub.add_parser(
        "model",
        formatter_class=HelpFormatter,
        help="tiny random HuBERT + BERT and OUT_DIR/m4ser_tiny.yaml (hparams/m4ser.yaml at CPU size)",
        description="Save a tiny random HuBERT and BERT under OUT_DIR/models/ and write "
                    "OUT_DIR/m4ser_tiny.yaml: hparams/m4ser.yaml with the demos' sizes, a model "
                    "YAML for any recipe (m4ser_lobes.testing.tiny_model).",
    )
    model.add_argument("out_dir", type=Path, help="output folder (created)")
    model.add_argument("--epochs", type=int, default=1, help="number_of_epochs of the YAML")
    model.add_argument("--hparams", type=Path, default=None,
                       help="model YAML to shrink (default: hparams/m4ser.yaml of this source tree)")
    return parser


def summary(corpus):
    """One line about a written corpus: counts, labels, where, the hypotheses' WER."""
    counts = Counter(u.label for u in corpus.utterances.values())
    wer = json.loads(corpus.hypotheses.read_text())["wer"]
    return (
        f"wrote {len(corpus.utterances)} utterances to {corpus.root} "
        f"(labels {dict(sorted(counts.items()))}); "
        f"hypotheses {corpus.hypotheses} (WER {wer:.1%})"
    )


def main(argv=None):
    """Command line: ``m4ser-mini-corpus {iemocap,meld,model} OUT_DIR ...``; returns the exit status.

    Prints a one-line summary (:func:`summary`), or one error line (espeak-ng or the model YAML
    missing: exit status 2); :func:`generate_iemocap` returns the corpus object to Python callers.
    """
    from m4ser_lobes.testing import mini_meld
    from m4ser_lobes.testing.speech import SpeechError

    args = build_parser().parse_args(argv)
    try:
        if args.corpus == "model":
            from m4ser_lobes.testing.tiny_model import write_tiny_model

            path = write_tiny_model(args.out_dir, epochs=args.epochs, hparams_file=args.hparams)
            print(f"wrote {path} (tiny encoders in {path.parent / 'models'})")
        elif args.corpus == "meld":
            print(mini_meld.summary(mini_meld.generate_meld(
                args.out_dir, seed=args.seed, per_split=args.per_split, speech=args.speech)))
        else:
            print(summary(generate_iemocap(
                args.out_dir, seed=args.seed, utterances_per_dialog=args.utterances_per_dialog,
                filtered_per_dialog=args.filtered_per_dialog, speech=args.speech)))
    except (SpeechError, FileNotFoundError) as error:
        print(f"m4ser-mini-corpus: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
