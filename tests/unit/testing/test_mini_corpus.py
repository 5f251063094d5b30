"""The synthetic IEMOCAP corpus: exact on-disk format, ASR cache, determinism, learnability."""

import json
import re
from collections import Counter

import jiwer
import numpy as np
import pytest
import soundfile as sf

from m4ser_lobes.testing import mini_iemocap as mini_corpus
from m4ser_lobes.testing.mini_iemocap import CLASSES, DIALOGS, corpus_words, generate_iemocap

# The regexes quoted in docs/design.md §8.1 (strict: exact tabs, 4 decimals).
HEADER = re.compile(r"^\[(\d+\.\d+) - (\d+\.\d+)\]\t(\S+)\t(\w{3})\t\[(\S+), (\S+), (\S+)\]$")
TRANSCRIPTION = re.compile(r"^(\S+) \[(\d{3}\.\d{4})-(\d{3}\.\d{4})\]: (.*)$")
CATEGORICAL = re.compile(r"^C-[EFM]\d:\t[A-Z][a-z ]+;\t\(.*\)$")
DIMENSIONAL = re.compile(r"^A-[EFM]\d:\tval \d; act \d; dom  \d;\t\(.*\)$")


def kept(corpus):
    return {k: u for k, u in corpus.utterances.items() if u.emotion is not None}


def test_counts_classes_and_labels(mini_iemocap):
    utts = mini_iemocap.utterances
    good = kept(mini_iemocap)
    assert len(good) == 5 * 4 * 10
    assert Counter(u.emotion for u in good.values()) == {c: 50 for c in CLASSES}
    assert Counter(u.session for u in good.values()) == {s: 40 for s in range(1, 6)}
    labels = Counter(u.label for u in utts.values())
    assert labels["hap"] > 0 and labels["exc"] > 0
    assert labels["hap"] + labels["exc"] == 50
    filtered = {u.label for u in utts.values() if u.emotion is None}
    assert {"fru", "xxx", "sur", "oth"} <= filtered
    assert len(utts) - len(good) == 5 * 4 * 2
    assert {u.dialog for u in utts.values()} == {d for ds in DIALOGS.values() for d in ds}


def test_tree_with_decoys_and_odd_dialogs(mini_iemocap):
    root = mini_iemocap.root
    wavs = sorted(root.glob("Session*/sentences/wav/*/*.wav"))
    assert {w.stem for w in wavs} == set(mini_iemocap.utterances)
    for dialog in ("Ses03M_impro05a", "Ses05M_script01_1b"):
        session = int(dialog[4])
        assert (root / f"Session{session}/sentences/wav/{dialog}").is_dir()
        assert (root / f"Session{session}/dialog/EmoEvaluation/{dialog}.txt").is_file()
    evaluation = root / "Session1" / "dialog" / "EmoEvaluation"
    assert (evaluation / "Categorical").is_dir()
    assert any(p.name.startswith("._") for p in evaluation.iterdir())
    odd = [u for u in mini_iemocap.utterances.values() if u.dialog == "Ses03M_impro05a"]
    assert {u.gender for u in odd} == {"F", "M"}
    assert all(u.gender == u.utt_id.rsplit("_", 1)[1][0] for u in odd)
    assert any(u.utt_id[15] != u.gender for u in odd)  # a fixed character index is wrong here


def test_emoevaluation_format(mini_iemocap):
    for path in sorted(mini_iemocap.root.glob("Session*/dialog/EmoEvaluation/Ses*.txt")):
        raw = path.read_bytes().decode()
        newline = "\r\n" if path.stem == mini_corpus.CRLF_DIALOG else "\n"
        assert raw.count("\r\n") == (raw.count("\n") if newline == "\r\n" else 0)
        lines = raw.split(newline)
        assert lines[0] == "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
        blocks = [b for b in newline.join(lines[1:]).split(newline * 2) if b.strip()]
        for block in blocks:
            header, *evaluators = block.strip(newline).split(newline)
            match = HEADER.match(header)
            assert match, header
            start, end, utt_id, label = match.group(1, 2, 3, 4)
            truth = mini_iemocap.utterances[utt_id]
            assert label == truth.label
            assert (float(start), float(end)) == (truth.start, truth.end)
            assert abs(float(end) - float(start) - truth.num_samples / 16000) < 1e-4
            assert all(1 <= float(x) <= 5 for x in match.group(5, 6, 7))
            assert any(CATEGORICAL.match(e) for e in evaluators)
            assert any(DIMENSIONAL.match(e) for e in evaluators)
            assert all(CATEGORICAL.match(e) or DIMENSIONAL.match(e) for e in evaluators), block
        assert len(blocks) == sum(u.dialog == path.stem for u in mini_iemocap.utterances.values())


def test_transcription_format(mini_iemocap):
    lines = []
    for path in sorted(mini_iemocap.root.glob("Session*/dialog/transcriptions/*.txt")):
        lines += path.read_text().splitlines()
    parsed = {m.group(1): m for m in map(TRANSCRIPTION.match, lines) if m}
    assert any(TRANSCRIPTION.match(line) is None for line in lines)  # e.g. "M: [BREATHING]"
    assert any(k.endswith("XX0") and k not in mini_iemocap.utterances for k in parsed)
    for utt_id, truth in mini_iemocap.utterances.items():
        assert parsed[utt_id].group(4) == truth.transcript
        assert float(parsed[utt_id].group(2)) == truth.start
    good = kept(mini_iemocap).values()
    assert any("[LAUGHTER]" in u.transcript for u in good)
    assert any(u.transcript[0].isupper() and u.transcript[-1] in ".?!" for u in good)
    assert all(4 <= len(u.reference.split()) <= 9 for u in mini_iemocap.utterances.values())
    assert all(u.reference == u.reference.lower() and "[" not in u.reference for u in good)


def test_wavs_are_16k_mono_pcm16(mini_iemocap):
    for utt in list(mini_iemocap.utterances.values())[::7]:
        wav = (mini_iemocap.root / f"Session{utt.session}" / "sentences" / "wav" / utt.dialog
               / f"{utt.utt_id}.wav")
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == utt.num_samples
        assert 0.8 <= info.duration <= 2.0


def test_hypothesis_cache(mini_iemocap):
    cache = json.loads(mini_iemocap.hypotheses.read_text())
    assert set(cache) == {"model", "wer", "wer_per_split", "num_utterances", "hypotheses"}
    good = kept(mini_iemocap)
    hyps = cache["hypotheses"]
    assert set(hyps) == set(good) and cache["num_utterances"] == len(good)
    assert sum(h == "" for h in hyps.values()) == 1
    assert set(cache["wer_per_split"]) == {str(s) for s in range(1, 6)}  # as m4ser_lobes.text.asr keys them
    ids = sorted(good)
    refs = [good[k].reference for k in ids]
    out = jiwer.process_words(refs, [hyps[k] for k in ids])
    assert cache["wer"] == pytest.approx(out.wer, abs=1e-4)
    assert 0.15 <= out.wer <= 0.25
    assert out.substitutions > 0 and out.deletions > 0 and out.insertions > 0
    kinds = [[chunk.type for chunk in a] for a in out.alignments]
    assert any(k[0] == "insert" for k in kinds) and any(k[-1] == "insert" for k in kinds)
    assert sum(h == good[k].reference for k, h in hyps.items()) > len(good) / 4  # some are right


def test_references_and_hypotheses_are_normalised_as_the_text_side_does(mini_iemocap):
    from m4ser_lobes.text.normalize import normalize_text
    from m4ser_lobes.text.statistics import word_error_rate

    good = kept(mini_iemocap).values()
    everything = mini_iemocap.utterances.values()
    assert all(normalize_text(u.transcript) == u.reference for u in everything)
    assert all(normalize_text(u.hypothesis) == u.hypothesis for u in good)
    cache = json.loads(mini_iemocap.hypotheses.read_text())
    pairs = [(u.hypothesis, u.transcript) for u in good]
    assert cache["wer"] == pytest.approx(word_error_rate(pairs), abs=1e-4)


def test_corpus_words_cover_the_references(mini_iemocap):
    words = set(corpus_words())
    used = Counter(w for u in mini_iemocap.utterances.values() for w in u.reference.split())
    assert set(used) <= words | set(mini_corpus.SPLIT_WORDS)
    assert set(mini_corpus.SPLIT_WORDS) & set(used) and not set(mini_corpus.SPLIT_WORDS) & words
    assert set(mini_corpus.POSITIVE_WORDS + mini_corpus.NEGATIVE_WORDS) - words == set(
        mini_corpus.SPLIT_WORDS) & set(mini_corpus.POSITIVE_WORDS + mini_corpus.NEGATIVE_WORDS)
    assert corpus_words() == sorted(words)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = files(generate_iemocap(tmp_path / "a", seed=7, utterances_per_dialog=2).root.parent)
    b = files(generate_iemocap(tmp_path / "b", seed=7, utterances_per_dialog=2).root.parent)
    c = files(generate_iemocap(tmp_path / "c", seed=8, utterances_per_dialog=2).root.parent)
    assert a == b
    assert a.keys() != c.keys() or any(a[k] != c[k] for k in a)
    wavs = [k for k in a.keys() & c.keys() if k.suffix == ".wav"]
    assert any(a[k] != c[k] for k in wavs)


def test_size_is_configurable_and_checked(tmp_path):
    corpus = generate_iemocap(tmp_path, seed=1, utterances_per_dialog=3, filtered_per_dialog=0)
    assert len(corpus.utterances) == len(kept(corpus)) == 5 * 4 * 3
    with pytest.raises(ValueError, match="utterances_per_dialog"):
        generate_iemocap(tmp_path / "x", utterances_per_dialog=0)


def test_cli(tmp_path, capsys):
    """main returns the exit status 0 (not the corpus) and prints one short line."""
    status = mini_corpus.main(["iemocap", str(tmp_path), "--seed", "3",
                               "--utterances-per-dialog", "2"])
    assert status == 0
    assert (tmp_path / "IEMOCAP_full_release" / "Session5").is_dir()
    out = capsys.readouterr().out
    assert "wrote 80 utterances" in out and out.count("\n") == 1 and len(out) < 400
    hypotheses = json.loads((tmp_path / "hypotheses.json").read_text())["hypotheses"]
    assert len(hypotheses) == 40


def test_console_script_exits_0_with_a_short_summary(tmp_path):
    """The issue: `m4ser-mini-corpus iemocap DIR` exited 1 printing the corpus' repr (~50 KB)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "m4ser-mini-corpus"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    run = subprocess.run([str(script), "iemocap", str(tmp_path), "--utterances-per-dialog", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("wrote 60 utterances") and len(run.stdout) < 400
    assert len(run.stderr) < 400, run.stderr[-2000:]


# ------------------------------------------------------------------------------- learnability
def _audio_features(corpus, utts):
    """Log RMS energy and the share of energy above 400 Hz (scale-invariant: it survives the
    per-utterance normalisation of HuBERT-style feature extractors)."""
    feats = []
    for u in utts:
        x, _ = sf.read(corpus.root / f"Session{u.session}/sentences/wav/{u.dialog}/{u.utt_id}.wav")
        power = np.abs(np.fft.rfft(x)) ** 2
        high_share = power[np.fft.rfftfreq(len(x), 1 / 16000) > 400].sum() / power.sum()
        feats.append([np.log(np.sqrt(np.mean(x ** 2))), high_share])
    return np.array(feats)


def _valence_score(words):
    negative = sum(w in mini_corpus.NEGATIVE_WORDS for w in words)
    return negative - sum(w in mini_corpus.POSITIVE_WORDS for w in words)


def test_each_modality_is_informative_but_only_fusion_is_sufficient(mini_iemocap):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    utts = sorted(kept(mini_iemocap).values())
    y = np.array([u.emotion for u in utts])
    audio = _audio_features(mini_iemocap, utts)
    # Arousal from loudness alone, or from the pitch band alone (one threshold each) ...
    high = np.isin(y, ["ang", "hap"])
    assert np.mean((audio[:, 0] > np.median(audio[:, 0])) == high) > 0.9
    assert np.mean((audio[:, 1] > 0.5) == high) > 0.9
    audio = (audio - audio.mean(0)) / audio.std(0)
    # ... and valence from counting words.
    negative = np.isin(y, ["ang", "sad"])
    scores = np.array([_valence_score(u.reference.split()) for u in utts])
    assert np.mean((scores > 0) == negative) > 0.9
    # Neither modality tells the four classes apart; together they do.
    text = CountVectorizer(binary=True).fit_transform([u.reference for u in utts]).toarray()

    def accuracy(x):
        return cross_val_score(LogisticRegression(max_iter=1000), x, y, cv=5).mean()

    audio_acc, text_acc = accuracy(audio), accuracy(text)
    fused_acc = accuracy(np.hstack([audio, text]))
    assert audio_acc < 0.65 and text_acc < 0.65, (audio_acc, text_acc)
    assert fused_acc > 0.85 and fused_acc > max(audio_acc, text_acc) + 0.25, fused_acc
