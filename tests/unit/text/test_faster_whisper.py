"""The faster-whisper ASR backend with real weights, offline (issue 11 §3).

Real speech through a real Whisper (``tests/real_asr.py``; skipped without faster-whisper):
hypotheses cache, WER, AED labels from the real ASR errors (emotion classification with the ASR
in the loop: ``tests/integration/test_faster_whisper_classify.py``).
"""

import json

import pytest
import soundfile as sf
from real_asr import MAX_WER, SPEECH, TINY_EN, WORDS  # skips without faster-whisper

from m4ser_lobes.text import asr
from m4ser_lobes.text.alignment import align_transcripts
from m4ser_lobes.text.hypotheses import CACHE_FIELDS, load_cache, transcribe_manifest
from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.statistics import word_error_rate
from m4ser_lobes.text.tags import LABEL_NAMES
from m4ser_lobes.text.transcribers import FasterWhisperTranscriber, asr_throughput
from m4ser_lobes.testing.models import save_tiny_whisper, save_wordpiece_tokenizer


@pytest.fixture(scope="module")
def tiny_en():
    assert (TINY_EN / "model.bin").is_file(), f"{TINY_EN}: no CTranslate2 model.bin"
    return FasterWhisperTranscriber(str(TINY_EN), device="cpu", cpu_threads=1)


@pytest.fixture(scope="module")
def speech_manifest(tmp_path_factory):
    """A SpeechBrain manifest of the clips, with their known words as ``transcript``."""
    manifest = tmp_path_factory.mktemp("speech") / "speech.json"
    entries = {
        utt_id: {"wav": str(SPEECH / f"{utt_id}.wav"), "transcript": text, "session": "espeak"}
        for utt_id, text in WORDS.items()
    }
    manifest.write_text(json.dumps(entries))
    return manifest


def test_the_clips_are_small_16k_mono_speech():
    assert len(WORDS) >= 4
    assert sum(p.stat().st_size for p in SPEECH.iterdir()) < 1_000_000
    for utt_id in WORDS:
        info = sf.info(SPEECH / f"{utt_id}.wav")
        assert (info.samplerate, info.channels) == (16000, 1) and 1.0 < info.duration < 5.0


@pytest.fixture(scope="module")
def cache_path(speech_manifest, tiny_en):
    """The hypothesis cache of the clips, written once by ``transcribe_manifest``."""
    path = speech_manifest.with_name("hyps.json")
    transcribe_manifest(
        [speech_manifest],
        path,
        str(TINY_EN),
        backend="faster-whisper",
        transcriber=tiny_en,
        progress=False,
        verbose=False,
    )
    return path


def test_hypotheses_cache_has_the_same_format_and_a_low_wer(cache_path):
    cache = json.loads(cache_path.read_text())
    assert sorted(cache) == sorted(CACHE_FIELDS)
    assert cache["model"] == str(TINY_EN)
    assert load_cache(cache_path) == cache
    hyps = cache["hypotheses"]
    assert set(hyps) == set(WORDS) and all(isinstance(h, str) and h for h in hyps.values())
    wer = word_error_rate([(hyps[u], WORDS[u]) for u in WORDS])
    assert cache["wer"] == pytest.approx(wer) and wer < MAX_WER, hyps
    assert cache["wer_per_split"] == {"espeak": pytest.approx(wer)}
    assert cache["backend"] == "faster-whisper"


def test_a_run_on_the_real_tiny_en_cache_records_it_and_warns(cache_path, speech_manifest, caplog):
    """tiny.en is not the paper's medium.en: the run says so; its hypotheses are not empty."""
    import logging

    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.text.provenance import asr_of_run

    train = speech_manifest.with_name("train.json")
    train.write_text(json.dumps({u: {"hypothesis": h} for u, h in
                                 load_cache(cache_path)["hypotheses"].items()}))
    values = {"hypotheses_file": str(cache_path), "text_source": "hypothesis"}
    record = asr_of_run(values, train, IEMOCAP)
    assert (record["model"], record["backend"]) == (str(TINY_EN), "faster-whisper")
    assert record["num_empty"] == 0 and record["wer"] < MAX_WER
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not of the paper's openai/whisper-medium.en" in warnings[0]


def test_cli_backend_option_writes_the_cache(speech_manifest, tmp_path, capsys):
    cli_cache = tmp_path / "cli.json"
    argv = ["--manifest", str(speech_manifest), "--cache", str(cli_cache), "--no-progress"]
    argv += ["--model", str(TINY_EN), "--backend", "faster-whisper", "--device", "cpu"]
    assert asr.main(argv) == 0
    cache = load_cache(cli_cache)
    assert cache["model"] == str(TINY_EN) and cache["wer"] < MAX_WER
    assert cache["backend"] == "faster-whisper"
    assert "WER overall" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # CTranslate2 option with the transformers backend
        asr.main(argv[:-4] + ["--compute-type", "int8"])


def test_aed_labels_from_real_asr_errors(cache_path, tmp_path):
    """Real hypotheses vs references give AED labels; an error gives a non-KEEP label."""
    hyps = load_cache(cache_path)["hypotheses"]
    refs = dict(WORDS)
    words = {w for text in (*hyps.values(), *refs.values()) for w in normalize_text(text).split()}
    if all(normalize_text(hyps[u]) == normalize_text(refs[u]) for u in refs):
        first = next(iter(refs))  # make sure one real pair differs
        refs[first] = refs[first] + " indeed"
        words.add("indeed")
    tokenizer = save_wordpiece_tokenizer(tmp_path / "tok", sorted(words))
    keep = LABEL_NAMES.index("keep")
    errors = 0
    for utt_id, ref in refs.items():
        alignment = align_transcripts(hyps[utt_id], ref, tokenizer)
        labels = [label for label in alignment.labels if label >= 0]
        assert len(alignment.input_ids) == len(alignment.labels)
        same = normalize_text(hyps[utt_id]).split() == normalize_text(ref).split()
        assert same == all(label == keep for label in labels), (hyps[utt_id], ref, labels)
        errors += not same
    assert errors >= 1


def test_throughput_of_both_backends(tiny_en, tmp_path):
    wavs = [sf.read(SPEECH / f"{u}.wav", dtype="float32")[0] for u in list(WORDS)[:3]]
    fast = asr_throughput("faster-whisper", tiny_en, wavs)
    whisper = save_tiny_whisper(tmp_path / "whisper", ["hello", "world"])
    slow = asr_throughput("transformers", str(whisper), wavs, batch_size=len(wavs))
    assert fast > 0 and slow > 0
    print(f"utterances_per_s: faster-whisper tiny.en {fast:.2f}, transformers tiny random {slow:.2f}")
