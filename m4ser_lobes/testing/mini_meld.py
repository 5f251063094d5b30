"""A tiny synthetic corpus in the exact on-disk layout of ``MELD.Raw``, for tests and demos.

``python -m m4ser_lobes.testing.mini_meld OUT_DIR [--seed N] [--per-split N]`` writes
``OUT_DIR/MELD.Raw/`` (the tree of the real release, see ``recipes/MELD/meld_prepare.py``) and
``OUT_DIR/hypotheses.json``, a fake ASR hypothesis cache in the format of ``m4ser_lobes.text.asr``
keyed by the prep's utterance ids (``train_dia0_utt0``). It takes a few seconds.

What the data prep must cope with, all present (:class:`MeldMiniCorpus` lists each case, so
tests can assert exactly what the prep must report):

* ``{train,dev,test}_sent_emo.csv`` with the release's columns, quoted fields with commas and
  quotes, typographic characters (``’ “ ” … –`` and no-break spaces); ``dev`` is written in
  cp1252, ``test`` in UTF-8 with a byte-order mark, ``train`` in plain UTF-8;
* the clip folders nested under extra directories (``train/train_splits/``,
  ``dev_splits_complete/``, ``test/MELD.Raw/output_repeated_splits_test/``), dialogue ids that
  restart in every split, a macOS ``._`` file;
* mp4 clips with an H.264 video stream of a few 32x32 frames and AAC audio at 48 kHz (stereo,
  one clip in 5.1), 1-2 s long, written with PyAV;
* train: an undecodable clip (garbage bytes named ``.mp4``), a mis-cut clip (the utterance
  followed by :data:`MISCUT_EXTRA_SECONDS` of other audio), a very quiet clip;
* dev: a row without a clip, two clips without a row;
* test: a clip present only as ``final_videos_testdia{D}_utt{U}.mp4``, one present under both
  names (the prefixed copy is garbage: using it would fail), a mis-cut clip, and two clips
  without a row (one of them prefixed).

The audio and the words are class-dependent as in :mod:`m4ser_lobes.testing.mini_iemocap` (whose
synthesiser, sentence and ASR-error functions are reused): the **audio carries arousal**
(joy, surprise, anger, fear: high; neutral, sadness, disgust: low), the **words carry valence**
(anger, sadness, disgust, fear: negative words) and a **cue word** separates the classes left
(surprise "wow", fear "help", disgust "yuck"), so speech and text together determine the class.
With ``speech="espeak"`` (``--speech espeak``) each row's words are spoken by espeak-ng with its
arousal's prosody (:mod:`m4ser_lobes.testing.speech`) and the CSV span follows the spoken length,
so a real ASR can transcribe the clips; the default tone corpus is written exactly as before.

Example
-------
>>> corpus = generate_meld(getfixture("tmp_path"), seed=0, per_split=7)
>>> corpus.root.name, corpus.expected_counts["kept"]
('MELD.Raw', {'train': 6, 'dev': 6, 'test': 7})
>>> corpus.skipped
{'train_dia0_utt1': 'undecodable', 'dev_dia1_utt0': 'missing'}
>>> corpus.flags["test_dia0_utt2"], corpus.flags["train_dia0_utt2"]
(('miscut',), ('miscut', 'trimmed'))
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from m4ser_lobes.utils.fileio import atomic_write_json
from m4ser_lobes.testing.speech import SPEECH_HELP, SPEECH_KINDS, Speaker, check_speech
from m4ser_lobes.testing.mini_iemocap import (
    SAMPLE_RATE,
    _corrupt,
    _hypothesis_cache,
    _render,
    _sentence,
    _synthesize,
)

RELEASE_NAME = "MELD.Raw"
CLIP_RATE = 48000  # the release's AAC sample rate
EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
HIGH_AROUSAL = {"joy", "surprise", "anger", "fear"}  # carried by the audio
NEGATIVE_VALENCE = {"anger", "sadness", "disgust", "fear"}  # carried by the words
CUE_WORDS = {"surprise": "wow", "fear": "help", "disgust": "yuck"}
SPEAKERS = {"Chandler": "M", "Joey": "M", "Ross": "M", "Monica": "F", "Phoebe": "F",
            "Rachel": "F"}
CSV_COLUMNS = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
               "Utterance_ID", "Season", "Episode", "StartTime", "EndTime")
CSV_ENCODINGS = {"train": "utf-8", "dev": "cp1252", "test": "utf-8-sig"}
CLIP_FOLDERS = {
    "train": Path("train") / "train_splits",
    "dev": Path("dev_splits_complete"),
    "test": Path("test") / RELEASE_NAME / "output_repeated_splits_test",
}
PREFIX = "final_videos_test"
UTTERANCES_PER_DIALOGUE = 3
MISCUT_EXTRA_SECONDS = 34.0  # beyond the CSV span: > 10 s margin and > 30 s in all
QUIET_GAIN = 3e-4  # about -75 dBFS
GARBAGE = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4  # an mp4 header, then noise

# Special cases by row position inside a split (rows are numbered in dialogue order).
UNDECODABLE_ROW, TRAIN_MISCUT_ROW, QUIET_ROW, SURROUND_ROW = 1, 2, 4, 5  # train
MISSING_ROW = 3  # dev
PREFIXED_ONLY_ROW, BOTH_NAMES_ROW, TEST_MISCUT_ROW = 0, 1, 2  # test
MIN_PER_SPLIT = 7

# Typographic decorations of the CSV text: (ASCII text the prep must produce, CSV text,
# reference words before, reference words after the sentence).
DECORATIONS = (
    ("{}", "{}", (), ()),
    ("Oh... {}", "Oh\u2026 {}", ("oh",), ()),
    ("{} I'm sure.", "{} I\u2019m sure.", (), ("i'm", "sure")),
    ('"{}" - and so on.', "\u201c{}\u201d \u2013 and\u00a0so on.", (), ("and", "so", "on")),
)


class MeldUtterance(NamedTuple):
    """Ground truth of one CSV row (what the data prep must recover)."""

    utt_id: str  # the prep's id: <split>_dia<D>_utt<U>
    session: str  # MELD split name: train, dev, test
    dialogue: int
    utterance: int
    emotion: str
    speaker: str
    start: float  # CSV StartTime, seconds
    end: float  # CSV EndTime, seconds
    transcript: str  # the CSV text after the prep's normalisation (plain ASCII)
    csv_text: str  # the text as written in the CSV (typographic characters)
    reference: str  # normalised words
    hypothesis: str  # fake ASR output
    clip: Path | None  # the file the prep must use (None: missing)
    clip_seconds: float | None  # audio length in that clip (None: missing or undecodable)


class MeldMiniCorpus(NamedTuple):
    """What :func:`generate_meld` wrote, and what the prep must report about it."""

    root: Path  # .../MELD.Raw
    hypotheses: Path  # hypothesis cache (JSON)
    utterances: dict  # utt_id -> MeldUtterance (every CSV row)
    expected_counts: dict  # {"rows": {split: n}, "kept": {split: n}}, the prep's format
    skipped: dict  # utt_id -> reason ("undecodable", "missing")
    flags: dict  # utt_id -> tuple of flags, for the flagged utterances only
    ignored_clips: dict  # split -> sorted names of the clips without a CSV row


def write_clip(path, audio, sample_rate=CLIP_RATE, layout="stereo", clip_rate=CLIP_RATE,
               frames=2):
    """Write an mp4 like MELD's: H.264 video (``frames`` 32x32 frames) and AAC audio.

    Arguments
    ---------
    path : str or Path
    audio : numpy.ndarray
        [L] float32 mono signal in [-1, 1], copied to every channel of ``layout``.
    sample_rate : int
        Rate of ``audio``; the encoder resamples it to ``clip_rate``.
    layout : str
        Channel layout of the AAC stream ("mono", "stereo", "5.1").
    clip_rate : int
        Sample rate of the AAC stream.
    frames : int
        Video frames (2 per second).

    Example
    -------
    >>> import av
    >>> path = getfixture("tmp_path") / "clip.mp4"
    >>> write_clip(path, np.zeros(4800, dtype=np.float32))
    >>> with av.open(str(path)) as c:
    ...     [(s.type, s.codec_context.name) for s in c.streams], c.streams.audio[0].rate
    ([('video', 'h264'), ('audio', 'aac')], 48000)
    """
    import av

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("h264", rate=2)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = container.add_stream("aac", rate=clip_rate, layout=layout)
        for i in range(max(1, frames)):
            image = np.full((32, 32, 3), (40 * i) % 256, dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        step = 1024
        for start in range(0, len(audio), step):
            frame = av.AudioFrame.from_ndarray(audio[None, start:start + step].copy(),
                                               format="flt", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())


def generate_meld(root, seed=0, per_split=21, speech="tone"):
    """Write the synthetic ``MELD.Raw`` release and its hypothesis cache into ``root``.

    Arguments
    ---------
    root : str or Path
        Output folder (created); receives ``MELD.Raw/`` and ``hypotheses.json``.
    seed : int
        Everything (labels, order, audio, words, ASR errors) is a function of the seed.
    per_split : int
        CSV rows per split (at least 7); classes rotate, so a multiple of 7 balances them.
    speech : str
        ``"tone"`` (default) or ``"espeak"``: the rows' words spoken by espeak-ng.

    Returns
    -------
    MeldMiniCorpus
    """
    if per_split < MIN_PER_SPLIT:
        raise ValueError(f"per_split must be >= {MIN_PER_SPLIT} (the special cases need the "
                         f"rows), got {per_split}")
    check_speech(speech)
    out_dir = Path(root)
    release = out_dir / RELEASE_NAME
    release.mkdir(parents=True, exist_ok=True)
    speaker = Speaker(np.random.default_rng([seed, 2])) if speech == "espeak" else None
    audios = {} if speaker else None
    (release / "README.txt").write_text(
        f"Synthetic MELD.Raw look-alike written by m4ser_lobes.testing.mini_meld (seed {seed}).\n"
        + (f"Speech: espeak-ng ({speaker.version}).\n" if speaker else ""))
    rng = np.random.default_rng(seed)
    utterances, skipped, flags, ignored = {}, {}, {}, {}
    for split_index, split in enumerate(("train", "dev", "test")):
        folder = release / CLIP_FOLDERS[split]
        folder.mkdir(parents=True, exist_ok=True)
        rows = _make_rows(rng, split, per_split, offset=split_index, voice=speaker, audios=audios)
        for position, u in enumerate(rows):
            u, fate = _write_row_clip(rng, folder, split, position, u, audios)
            utterances[u.utt_id] = u
            if fate in ("undecodable", "missing"):
                skipped[u.utt_id] = fate
            elif fate:
                flags[u.utt_id] = fate
        ignored[split] = _write_extra_clips(rng, folder, split, rows)
        _write_csv(release / f"{split}_sent_emo.csv", rows_of(utterances, split), split, rng)
    (release / CLIP_FOLDERS["test"] / f"._{PREFIX}dia0_utt0.mp4").write_bytes(b"\x00\x05\x16\x07")

    hyp_rng = np.random.default_rng([seed, 1])
    for utt_id, u in utterances.items():
        utterances[utt_id] = u._replace(hypothesis=" ".join(_corrupt(hyp_rng, u.reference.split())))
    cache = _hypothesis_cache(utterances)
    cache["model"] = "synthetic (m4ser_lobes.testing.mini_meld)"
    hypotheses = out_dir / "hypotheses.json"
    atomic_write_json(hypotheses, cache)

    rows = {s: sum(u.session == s for u in utterances.values()) for s in CSV_ENCODINGS}
    kept = {s: n - sum(k.startswith(f"{s}_") for k in skipped) for s, n in rows.items()}
    return MeldMiniCorpus(release, hypotheses, utterances, {"rows": rows, "kept": kept},
                          skipped, flags, ignored)


def rows_of(utterances, split):
    """The utterances of one split in CSV order (dialogue, then utterance).

    Example
    -------
    >>> u = {"a": MeldUtterance("a", "dev", 1, 0, *[None] * 10),
    ...      "b": MeldUtterance("b", "dev", 0, 2, *[None] * 10)}
    >>> [x.utt_id for x in rows_of(u, "dev")]
    ['b', 'a']
    """
    return sorted((u for u in utterances.values() if u.session == split),
                  key=lambda u: (u.dialogue, u.utterance))


def _make_rows(rng, split, count, offset, voice=None, audios=None):
    """Draw the labels, speakers, times and texts of one split (clips not written yet).

    With a ``voice`` (:class:`m4ser_lobes.testing.speech.Speaker`) the words are spoken into
    ``audios[utt_id]`` and the CSV span is their length.
    """
    rows, time, episode_start = [], 0.0, float(rng.uniform(30, 900))
    for i in range(count):
        dialogue, utterance = divmod(i, UTTERANCES_PER_DIALOGUE)
        if utterance == 0:
            time = episode_start + 60.0 * dialogue
        emotion = EMOTIONS[(i + offset) % len(EMOTIONS)]
        speaker = list(SPEAKERS)[int(rng.integers(len(SPEAKERS)))]
        start_ms = int(round(time * 1000))
        span_ms = int(rng.integers(1000, 2001))
        words = _sentence(rng, negative=emotion in NEGATIVE_VALENCE)
        if emotion in CUE_WORDS:
            words.insert(0, CUE_WORDS[emotion])
        ascii_template, csv_template, before, after = DECORATIONS[i % len(DECORATIONS)]
        raw = _render(rng, words)
        reference = [*before, *words, *after]
        utt_id = f"{split}_dia{dialogue}_utt{utterance}"
        if voice is not None:
            audio = voice(" ".join(reference), emotion in HIGH_AROUSAL, SPEAKERS[speaker])
            audios[utt_id] = audio.astype(np.float32) / 32768
            span_ms = int(np.ceil(1000 * len(audio) / SAMPLE_RATE))
        rows.append(MeldUtterance(
            utt_id, split, dialogue, utterance, emotion,
            speaker, start_ms / 1000, (start_ms + span_ms) / 1000,
            ascii_template.format(raw), csv_template.format(raw), " ".join(reference),
            "", None, None,
        ))
        time += span_ms / 1000 + float(rng.uniform(0.2, 1.5))
    return rows


def _utterance_audio(rng, u, seconds):
    """Class-dependent mono float32 audio at :data:`SAMPLE_RATE` (arousal, speaker pitch)."""
    samples = int(round(seconds * SAMPLE_RATE))
    audio = _synthesize(rng, u.emotion in HIGH_AROUSAL, SPEAKERS[u.speaker], samples)
    return audio.astype(np.float32) / 32768


def _write_row_clip(rng, folder, split, position, u, audios=None):
    """Write the clip of one row (or its special case); return the row and its fate/flags.

    The audio is synthesised here, or ``audios[utt_id]`` when given (spoken rows).
    """
    span = round(u.end - u.start, 3)
    name = f"dia{u.dialogue}_utt{u.utterance}.mp4"
    audio = _utterance_audio(rng, u, span) if audios is None else audios[u.utt_id]
    layout, fate = "stereo", None
    if split == "train" and position == UNDECODABLE_ROW:
        (folder / name).write_bytes(GARBAGE)
        return u._replace(clip=folder / name), "undecodable"
    if split == "dev" and position == MISSING_ROW:
        return u, "missing"
    if split in ("train", "test") and position == (
            TRAIN_MISCUT_ROW if split == "train" else TEST_MISCUT_ROW):
        other = EMOTIONS[(EMOTIONS.index(u.emotion) + 3) % len(EMOTIONS)]
        scene = _utterance_audio(rng, u._replace(emotion=other), MISCUT_EXTRA_SECONDS)
        audio = np.concatenate([audio, scene])
        fate = ("miscut", "trimmed") if split == "train" else ("miscut",)
    if split == "train" and position == QUIET_ROW:
        audio, fate = audio * np.float32(QUIET_GAIN), ("quiet",)
    if split == "train" and position == SURROUND_ROW:
        layout = "5.1"
    if split == "test" and position == PREFIXED_ONLY_ROW:
        name, fate = PREFIX + name, ("prefixed",)
    if split == "test" and position == BOTH_NAMES_ROW:
        (folder / (PREFIX + name)).write_bytes(GARBAGE)  # the plain clip must win
    path = folder / name
    write_clip(path, audio, sample_rate=SAMPLE_RATE, layout=layout,
               frames=max(1, int(2 * len(audio) / SAMPLE_RATE)))
    return u._replace(clip=path, clip_seconds=round(len(audio) / SAMPLE_RATE, 3)), fate


def _write_extra_clips(rng, folder, split, rows):
    """Clips without a CSV row (as in the release's dev and test folders); return their names."""
    if split == "train":
        return []
    last = rows[-1]
    if split == "dev":
        names = [f"dia{last.dialogue}_utt{last.utterance + 3}.mp4",
                 f"dia{last.dialogue + 5}_utt0.mp4"]
    else:
        names = [f"{PREFIX}dia{last.dialogue + 3}_utt0.mp4", f"dia{last.dialogue + 4}_utt2.mp4"]
    for name in names:
        write_clip(folder / name, _utterance_audio(rng, last, 1.0), sample_rate=SAMPLE_RATE)
    return sorted(names)


def _format_time(seconds):
    """CSV time ``H:MM:SS,mmm``.

    >>> _format_time(976.059)
    '00:16:16,059'
    """
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _write_csv(path, rows, split, rng):
    """Write ``<split>_sent_emo.csv`` in the release's columns and this split's encoding."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    season, episode = int(rng.integers(1, 10)), int(rng.integers(1, 25))
    for number, u in enumerate(rows, start=1):
        sentiment = {"neutral": "neutral", "joy": "positive"}.get(u.emotion, "negative")
        if u.emotion == "surprise":
            sentiment = ("positive", "negative")[number % 2]
        writer.writerow([number, u.csv_text, u.speaker, u.emotion, sentiment, u.dialogue,
                         u.utterance, season, episode, _format_time(u.start),
                         _format_time(u.end)])
    path.write_bytes(buffer.getvalue().encode(CSV_ENCODINGS[split]))


def add_arguments(parser):
    """Add the generator's arguments to ``parser`` (this module's CLI, or a ``meld`` subcommand)."""
    parser.add_argument("out_dir", type=Path, help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--per-split", type=int, default=21,
                        help=f"CSV rows per split (at least {MIN_PER_SPLIT})")
    parser.add_argument("--speech", choices=SPEECH_KINDS, default="tone", help=SPEECH_HELP)
    return parser


def build_parser():
    """The ``python -m m4ser_lobes.testing.mini_meld`` argument parser."""
    from m4ser_lobes.utils.cli import HelpFormatter

    return add_arguments(argparse.ArgumentParser(
        prog="python -m m4ser_lobes.testing.mini_meld", formatter_class=HelpFormatter,
        description="Write OUT_DIR/MELD.Raw/ (a tiny synthetic MELD look-alike) and "
                    "OUT_DIR/hypotheses.json."))


def summary(corpus):
    """One line about a written corpus: rows, expected counts and special cases, WER."""
    wer = json.loads(corpus.hypotheses.read_text())["wer"]
    return (f"wrote {len(corpus.utterances)} CSV rows to {corpus.root} "
            f"(expected {corpus.expected_counts}, skipped {corpus.skipped}, flags "
            f"{corpus.flags}, ignored clips {corpus.ignored_clips}); hypotheses "
            f"{corpus.hypotheses} (WER {wer:.1%})")


def main(argv=None):
    """Command line: ``python -m m4ser_lobes.testing.mini_meld OUT_DIR``; returns the exit status."""
    args = build_parser().parse_args(argv)
    print(summary(generate_meld(args.out_dir, seed=args.seed, per_split=args.per_split,
                                speech=args.speech)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
