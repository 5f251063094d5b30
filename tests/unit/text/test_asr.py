"""Tests of the ASR side of m4ser_lobes.text (transcribers, hypotheses, the asr command line)
with a tiny random Whisper (gibberish text, real code paths)."""

import json

import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch

from m4ser_lobes.text.asr import main
from m4ser_lobes.text.hypotheses import (
    corpus_wer,
    load_cache,
    load_hypotheses,
    load_manifests,
    transcribe_manifest,
)
from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.statistics import word_error_rate
from m4ser_lobes.text.transcribers import WhisperTranscriber, split_long_audio
from m4ser_lobes.testing.models import save_tiny_whisper

CHUNK = 1.0  # seconds: small so that the "long" file is split without long audio


def tone(seconds, rate, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model is latency-bound: one thread is ~10x faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper"), ["hello", "world", "okay"])


@pytest.fixture(scope="module")
def transcriber(whisper_dir):
    return WhisperTranscriber(str(whisper_dir), device="cpu", batch_size=2, chunk_seconds=CHUNK)


class CountingTranscriber:
    """Wraps a transcriber; records how many waveforms each call received."""

    def __init__(self, inner, fail_after=None):
        self.inner, self.fail_after, self.calls = inner, fail_after, []

    def __call__(self, waveforms):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append(len(waveforms))
        return self.inner(waveforms)


@pytest.fixture
def corpus(tmp_path):
    """Two manifests (Session1, Session2): mono 16 kHz, stereo 44.1 kHz and a long file."""
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    files = {
        "s1_a": (tone(0.5, 16000), 16000, "Hello world."),
        "s1_b": (np.stack([tone(0.7, 44100), tone(0.7, 44100, 330)], axis=1), 44100, "Okay!"),
        "s1_c": (tone(0.3, 16000), 16000, "[LAUGHTER] yes"),
        "s2_a": (tone(2.6, 16000), 16000, "a long one, indeed"),  # > CHUNK: split in 3 pieces
        "s2_b": (tone(0.4, 22050), 22050, "Bye."),
    }
    manifests = {"Session1": {}, "Session2": {}}
    for utt_id, (audio, rate, text) in files.items():
        path = wavs / f"{utt_id}.wav"
        sf.write(path, audio, rate)
        session = "Session1" if utt_id.startswith("s1") else "Session2"
        manifests[session][utt_id] = {
            "wav": str(path),
            "transcript": text,
            "session": session,
            "duration": len(audio) / rate,
        }
    paths = []
    for session, manifest in manifests.items():
        paths.append(tmp_path / f"{session}.json")
        paths[-1].write_text(json.dumps(manifest))
    return paths, {u: e for m in manifests.values() for u, e in m.items()}


# ------------------------------------------------------------------------------------ audio


def test_pipeline_feeds_mono_16k_audio(corpus, tmp_path):
    paths, entries = corpus
    seen = []

    def recording_transcriber(waveforms):
        seen.extend(waveforms)
        return ["x"] * len(waveforms)

    transcribe_manifest(
        paths,
        tmp_path / "h.json",
        "fake",
        batch_size=8,
        transcriber=recording_transcriber,
        progress=False,
        verbose=False,
    )
    durations = [e["duration"] for e in entries.values()]  # manifest order, one batch
    assert [w.ndim for w in seen] == [1] * 5
    assert [len(w) for w in seen] == [round(d * 16000) for d in durations]
    stereo = seen[1]  # s1_b: 44.1 kHz, 220 Hz left + 330 Hz right, downmixed
    assert stereo.dtype == np.float32 and 0.1 < np.abs(stereo).max() < 0.61


def test_split_long_audio_cuts_in_silence():
    rate = 16000
    audio = np.concatenate(
        [tone(0.85, rate), np.zeros(int(0.1 * rate), "float32"), tone(1.5, rate)]
    )
    pieces = split_long_audio(audio, chunk_seconds=1.0, sample_rate=rate)
    assert np.array_equal(np.concatenate(pieces), audio)
    assert all(len(p) <= rate for p in pieces)
    assert 0.85 * rate <= len(pieces[0]) <= 0.95 * rate  # first cut inside the silent gap
    assert len(split_long_audio(audio[:100], chunk_seconds=1.0)) == 1


# ---------------------------------------------------------------------------------- Whisper


def test_transcriber_batches_pieces(transcriber):
    waves = [tone(0.5, 16000), tone(2.6, 16000), tone(0.2, 16000)]  # 1 + 3 + 1 pieces
    before_calls, before_pieces = transcriber.num_generate_calls, transcriber.num_pieces
    texts = transcriber(waves)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert transcriber.fp16 is False and transcriber.dtype == torch.float32  # CPU: no fp16
    assert transcriber.num_pieces - before_pieces == 5
    assert transcriber.num_generate_calls - before_calls == 3  # ceil(5 / batch_size 2)
    # batching does not change the text of a short utterance
    assert transcriber([waves[0]]) == texts[:1]
    assert transcriber([np.zeros(0, "float32")]) == [""]


def test_transcriber_rejects_long_chunks(whisper_dir):
    with pytest.raises(ValueError, match="chunk_seconds"):
        WhisperTranscriber(str(whisper_dir), chunk_seconds=45)


# ------------------------------------------------------------------------- cache and resume


def test_transcribe_manifest_writes_cache_with_wer(corpus, tmp_path, transcriber, capsys):
    paths, entries = corpus
    cache_path = tmp_path / "out" / "hyps.json"
    counter = CountingTranscriber(transcriber)
    cache = transcribe_manifest(
        paths, cache_path, "tiny-whisper", batch_size=2, transcriber=counter, progress=False
    )
    assert counter.calls == [2, 2, 1]  # 5 utterances in batches of 2
    on_disk = json.loads(cache_path.read_text())
    assert on_disk == cache
    assert set(cache["hypotheses"]) == set(entries)
    assert cache["model"] == "tiny-whisper" and cache["num_utterances"] == 5
    assert sorted(cache["wer_per_split"]) == ["Session1", "Session2"]
    hyps = cache["hypotheses"]
    for split in ("Session1", "Session2"):
        pairs = [(hyps[u], e["transcript"]) for u, e in entries.items() if e["session"] == split]
        assert cache["wer_per_split"][split] == pytest.approx(word_error_rate(pairs))
    assert cache["wer"] == pytest.approx(
        word_error_rate([(hyps[u], e["transcript"]) for u, e in entries.items()])
    )
    assert [p.name for p in cache_path.parent.iterdir()] == ["hyps.json"]  # no temp file left
    assert "WER Session2" in capsys.readouterr().out


def test_resume_keeps_cached_ids_and_transcribes_the_rest(corpus, tmp_path, transcriber):
    paths, entries = corpus
    cache_path = tmp_path / "hyps.json"
    seeded = {u: e["transcript"] for u, e in entries.items() if e["session"] == "Session1"}
    cache_path.write_text(json.dumps({"model": "tiny-whisper", "hypotheses": seeded}))
    counter = CountingTranscriber(transcriber)
    cache = transcribe_manifest(
        paths,
        cache_path,
        "tiny-whisper",
        batch_size=8,
        transcriber=counter,
        progress=False,
        verbose=False,
    )
    assert counter.calls == [2]  # only the two Session2 utterances
    assert {u: cache["hypotheses"][u] for u in seeded} == seeded  # kept verbatim
    assert cache["wer_per_split"]["Session1"] == 0.0
    # Everything cached: the model is never loaded (a bogus id would fail to load).
    again = transcribe_manifest(
        paths, cache_path, "tiny-whisper", transcriber=None, progress=False, verbose=False
    )
    assert again == cache


def test_interrupted_run_resumes_from_periodic_save(corpus, tmp_path, transcriber):
    paths, entries = corpus
    cache_path = tmp_path / "hyps.json"
    with pytest.raises(KeyboardInterrupt):
        transcribe_manifest(
            paths,
            cache_path,
            "tiny-whisper",
            batch_size=2,
            save_every=1,
            transcriber=CountingTranscriber(transcriber, fail_after=2),
            progress=False,
            verbose=False,
        )
    partial = load_hypotheses(cache_path)
    assert len(partial) == 4  # two batches of two were saved before the interruption
    counter = CountingTranscriber(transcriber)
    cache = transcribe_manifest(
        paths,
        cache_path,
        "tiny-whisper",
        batch_size=2,
        transcriber=counter,
        progress=False,
        verbose=False,
    )
    assert counter.calls == [1]
    assert set(cache["hypotheses"]) == set(entries)
    assert {u: cache["hypotheses"][u] for u in partial} == partial


def test_cache_of_another_model_is_refused(corpus, tmp_path, transcriber):
    paths, _ = corpus
    cache_path = tmp_path / "hyps.json"
    cache_path.write_text(json.dumps({"model": "openai/whisper-large-v2", "hypotheses": {}}))
    with pytest.raises(ValueError, match="--overwrite"):
        transcribe_manifest(
            paths,
            cache_path,
            "tiny-whisper",
            transcriber=transcriber,
            progress=False,
            verbose=False,
        )
    cache = transcribe_manifest(
        paths,
        cache_path,
        "tiny-whisper",
        transcriber=transcriber,
        overwrite=True,
        progress=False,
        verbose=False,
    )
    assert cache["model"] == "tiny-whisper" and cache["num_utterances"] == 5


def test_user_supplied_hypotheses_get_their_wer(corpus, tmp_path):
    paths, entries = corpus
    cache_path = tmp_path / "other_asr.json"
    hyps = {u: "hello world" for u in entries}
    cache_path.write_text(json.dumps({"hypotheses": hyps}))
    cache = transcribe_manifest(paths, cache_path, None, progress=False, verbose=False)
    refs = [normalize_text(entries[u]["transcript"]) for u in entries]
    assert cache["wer"] == pytest.approx(jiwer.wer(refs, ["hello world"] * len(refs)))
    assert cache["hypotheses"] == hyps


def test_unreadable_audio_is_skipped_and_reported(corpus, tmp_path, transcriber, caplog):
    paths, entries = corpus
    with open(entries["s1_c"]["wav"], "wb") as f:
        f.write(b"garbage")
    cache = transcribe_manifest(
        paths,
        tmp_path / "h.json",
        "tiny-whisper",
        transcriber=transcriber,
        progress=False,
        verbose=False,
    )
    assert "s1_c" not in cache["hypotheses"] and len(cache["hypotheses"]) == 4
    assert list(cache["failed"]) == ["s1_c"] and "ffmpeg" in cache["failed"]["s1_c"]
    assert "skipping s1_c" in caplog.text


# -------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "top level is a list"),
        ('{"u1": "hello"}', "flat id -> text mapping"),
        ('{"model": "x"}', '"hypotheses" is missing'),
        ('{"hypotheses": ["hello"]}', '"hypotheses" is a list'),
        ('{"hypotheses": {"u1": null}}', "not strings.*u1"),
    ],
)
def test_malformed_cache_gives_clear_error(tmp_path, content, message):
    path = tmp_path / "bad_cache.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_hypotheses(path)
    assert str(path) in str(err.value) and "python -m m4ser_lobes.text.asr" in str(err.value)


def test_missing_cache_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m m4ser_lobes.text.asr"):
        load_cache(tmp_path / "nope.json")


def test_manifest_errors_name_the_file(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"u1": {"transcript": "hi"}}))
    with pytest.raises(ValueError, match=r"a\.json.*'u1'.*'wav'"):
        load_manifests([tmp_path / "a.json"])
    (tmp_path / "b.json").write_text(json.dumps({"u1": {"wav": "/x/1.wav"}}))
    (tmp_path / "c.json").write_text(json.dumps({"u1": {"wav": "/y/1.wav"}}))
    with pytest.raises(ValueError, match=r"c\.json.*unique"):
        load_manifests([tmp_path / "b.json", tmp_path / "c.json"])
    assert len(load_manifests([tmp_path / "b.json", tmp_path / "b.json"])) == 1
    (tmp_path / "d.json").write_text(json.dumps({"u1": {"wav": "{data_root}/1.wav"}}))
    assert load_manifests([tmp_path / "d.json"], data_root="/data")["u1"]["wav"] == "/data/1.wav"
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_manifests([tmp_path / "missing.json"])


def test_corpus_wer_skips_entries_without_transcript():
    entries = {"a": {"transcript": "yes", "session": "S1"}, "b": {"session": "S1"}}
    assert corpus_wer({"a": "no", "b": "x"}, entries) == (1.0, {"S1": 1.0})
    assert corpus_wer({}, entries) == (None, {})


# ------------------------------------------------------------------------------------- CLI


def test_cli_end_to_end(corpus, tmp_path, whisper_dir, capsys):
    paths, entries = corpus
    cache_path = tmp_path / "cli.json"
    hparams = tmp_path / "hparams.yaml"
    hparams.write_text(f"asr_model: {whisper_dir}\nmodel: !new:torch.nn.Linear\n  in_features: 2\n")
    argv = [
        "--manifest",
        *map(str, paths),
        "--cache",
        str(cache_path),
        "--hparams",
        str(hparams),
        "--batch-size",
        "4",
        "--chunk-seconds",
        str(CHUNK),
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert set(load_hypotheses(cache_path)) == set(entries)
    assert load_cache(cache_path)["model"] == str(whisper_dir)
    assert "WER overall" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--manifest", str(paths[0]), "--cache", str(cache_path)])  # no model given


# --------------------------------------------------------------------------------- backends
def test_throughput_is_utterances_per_second_of_timed_calls(transcriber):
    from m4ser_lobes.text.transcribers import asr_throughput

    wavs = [tone(0.5, 16000), tone(0.3, 16000), tone(0.4, 16000)]
    before = transcriber.num_pieces
    rate = asr_throughput("transformers", transcriber, wavs, repeats=2)
    assert rate > 0
    assert transcriber.num_pieces - before == 1 + 2 * len(wavs)  # one warm-up piece, 2 passes
    with pytest.raises(ValueError, match="at least one waveform"):
        asr_throughput("transformers", transcriber, [])


def test_unknown_backend_and_misplaced_options_are_refused(corpus, tmp_path, whisper_dir):
    paths, _ = corpus
    with pytest.raises(ValueError, match="unknown ASR backend 'whisper.cpp'; choose one of "
                                         "transformers, faster-whisper"):
        transcribe_manifest(paths, tmp_path / "c.json", str(whisper_dir), backend="whisper.cpp",
                            progress=False, verbose=False)
    with pytest.raises(ValueError, match="faster-whisper backend only"):
        transcribe_manifest(paths, tmp_path / "c.json", str(whisper_dir), compute_type="int8",
                            progress=False, verbose=False)
    with pytest.raises(SystemExit):
        main(["--manifest", str(paths[0]), "--cache", str(tmp_path / "c.json"), "--model",
              str(whisper_dir), "--backend", "whisper.cpp"])


def test_missing_faster_whisper_says_how_to_install_it(monkeypatch):
    import sys

    from m4ser_lobes.text.transcribers import make_transcriber

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if it were not installed
    with pytest.raises(ImportError) as err:
        make_transcriber("faster-whisper", "tiny.en")
    message = str(err.value)
    assert "pip install faster-whisper" in message and 'pip install -e ".[faster-whisper]"' in message
    assert "pip install m4ser-speechbrain" not in message, "no package index has it"


def test_openai_ids_map_to_faster_whisper_sizes():
    from m4ser_lobes.text.transcribers import faster_whisper_model_name

    assert faster_whisper_model_name("openai/whisper-large-v2") == "large-v2"
    assert faster_whisper_model_name("openai/whisper-medium.en") == "medium.en"
    assert faster_whisper_model_name("/models/ct2-whisper") == "/models/ct2-whisper"
