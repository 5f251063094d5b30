"""MELD data preparation: 7-class JSON manifests of the official train / dev / test split.

Obtaining the corpus
--------------------
MELD (Poria et al., ACL 2019) is public: download ``MELD.Raw.tar.gz`` (about 10 GB) from the
link in https://github.com/declare-lab/MELD (README, "Download the data"), unpack it, then
unpack the three archives inside it. Pass the ``MELD.Raw`` folder as ``data_folder``::

    MELD.Raw/
      train_sent_emo.csv  dev_sent_emo.csv  test_sent_emo.csv    # one row per utterance
      train.tar.gz -> train_splits/dia{D}_utt{U}.mp4
      dev.tar.gz   -> dev_splits_complete/dia{D}_utt{U}.mp4
      test.tar.gz  -> output_repeated_splits_test/dia{D}_utt{U}.mp4
                      (some named final_videos_testdia{D}_utt{U}.mp4)

The CSV files and the three clip folders are found by name anywhere below ``data_folder``
(archives unpacked in place, into subfolders, or next to each other all work); files whose name
starts with ``.`` are ignored. The CSV columns are ``Sr No., Utterance, Speaker, Emotion,
Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime`` (times as
``00:16:16,059``). Copies of the CSVs circulate in UTF-8 and in cp1252; each file is read in
the one encoding it is written in (a file that is neither, such as UTF-8 with a stray cp1252 byte,
is an error naming the line and byte), and the typographic characters of the transcripts are
normalised (``’`` -> ``'``, ``…`` -> ``...``), so the two copies give the same manifests; see
:mod:`m4ser_lobes.corpora.meld_csv`.

The audio is decoded once into ``audio_cache`` (default ``<save_folder>/audio16k``), 16 kHz mono
wav; clips already converted to 16 kHz mono wav or flac (same folder names and stems) are used in
place. How, and the rules applied per clip: :mod:`m4ser_lobes.corpora.meld_audio`.

Split protocol and labels
-------------------------
The official split is used as is: train (9989 CSV rows), dev (1109) for model selection,
test (2610) for the reported ACC and weighted F1. The manifests are ``train.json``,
``valid.json`` (MELD's dev) and ``test.json``. Seven classes, the CSV's lowercase names
(:data:`EMOTIONS`). Dialogue ids restart in every split, so utterance ids carry the split:
``train_dia0_utt0``, ``dev_dia0_utt0``, ``test_dia0_utt0``; ``session`` is the split name.

Known media problems, and what is done (each by rule, logged, counted in ``summary.json``)
-----------------------------------------------------------------------------------------
* A clip that does not decode (train ``dia125_utt3`` in the release): **skipped**, reason
  ``undecodable`` (with the decoder's message).
* A CSV row without a clip (dev ``dia110_utt7``): **skipped**, reason ``missing``.
* Clips without a CSV row (dev ``dia66_utt9``, ``dia66_utt10``, ``dia49_utt4``, ``dia49_utt5``;
  test ``dia108_utt2``, ``final_videos_testdia101_utt0``): **ignored**, listed in the summary.
* Test clips named ``final_videos_testdia{D}_utt{U}.mp4`` are used as ``dia{D}_utt{U}``; when
  both names exist the plain one is used and the choice is logged (flag ``prefixed`` when only
  the prefixed clip exists).
* Mis-cut clips (test ``dia220_utt0``, ``dia38_utt4``; train ``dia309_utt0``, ``dia793_utt0``)
  run for minutes although their CSV span ``EndTime - StartTime`` is a few seconds: flag
  ``miscut`` (rule in :mod:`m4ser_lobes.corpora.meld_audio`), and in the splits of
  ``trim_miscut`` (default train and dev) trimmed to their first span seconds (``trimmed``):
  minutes of other dialogue under one label would teach the model noise. The test clips are kept
  whole by default: the paper's test set (2610 rows) includes them, and the recipe's
  ``max_audio_seconds`` crop already limits what the model hears (the first seconds, where the
  trim would also look). Pass ``trim_miscut=("train", "dev", "test")`` to trim them too.
* CSV times that do not parse, or an ``EndTime`` not after ``StartTime``: kept, flagged
  ``bad_span``, never trimmed, times null. Very quiet clips (RMS below ``quiet_dbfs``, default
  -50 dBFS): kept, flagged ``quiet`` (silence is a property of the data, not a failure).

Counts: the number of CSV rows per split is asserted before any decoding, the number of kept
utterances (9988 / 1108 / 2610 on the full release, after the undecodable and the missing clip)
before anything is written (:data:`FULL_RELEASE`); pass ``expected_counts=None`` (``--subset``)
for part of the corpus. The paper's Fig. 6 class counts sum to 13,095, the CSVs to 13,708: every
row whose media is usable is kept here and the summary lists the rest.

ASR hypotheses come from a cache in the format of ``m4ser_lobes.text.asr`` keyed by these utterance
ids (docs/CONTRACTS.md). As for IEMOCAP the first run goes in two steps: prepare without
``hypotheses``, run ``python -m m4ser_lobes.text.asr --manifest <save_folder>/*.json --cache
hyps.json --model openai/whisper-large-v2``, prepare again with ``hypotheses=hyps.json``.

Outputs: ``<save_folder>/{train,valid,test}.json`` (SpeechBrain JSON manifests keyed by utterance
id, the IEMOCAP fields ``wav``, ``duration``, ``emo``, ``speaker``, ``gender`` (null: MELD has no
gender labels), ``session``, ``transcript``, ``hypothesis``, plus ``dialogue``, ``utterance``,
``start``, ``end`` (CSV times, seconds into the episode) and ``flags``), ``summary.json`` and
``identity.json``. Work already done with the same options (and hypothesis cache content) is
skipped; the corpus is not hashed, so delete ``save_folder`` after changing ``data_folder``.

Example
-------
>>> from m4ser_lobes.testing.mini_meld import generate_meld
>>> tmp = getfixture("tmp_path")
>>> corpus = generate_meld(tmp / "data", per_split=7)
>>> summary = prepare_meld(corpus.root, tmp / "prep", hypotheses=corpus.hypotheses,
...                        expected_counts=corpus.expected_counts, num_workers=1)
>>> summary["manifests"], summary["skipped"]
({'train': 6, 'valid': 6, 'test': 7}, {'missing': 1, 'undecodable': 1})
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, List, Literal, NamedTuple, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from m4ser_lobes.corpora import HPARAMS, Corpus, meld_audio, prepare_folders
from m4ser_lobes.corpora.meld_audio import (  # noqa: F401 (public names of the MELD prep)
    AUDIO_SUFFIXES,
    SAMPLE_RATE,
    AudioResult,
    convert_audio,
    decode_audio,
    rms_dbfs,
    write_wav,
)
from m4ser_lobes.corpora.meld_csv import (  # noqa: F401 (public names of the MELD prep)
    CSV_COLUMNS,
    EMOTIONS,
    TYPOGRAPHY,
    MeldPrepError,
    Row,
    check_counts,
    decode_csv_bytes,
    normalize_transcript,
    parse_row,
    parse_time,
    read_csv,
    utterance_id,
)
from m4ser_lobes.data import prep
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)


class Split(NamedTuple):
    """One MELD split: its CSV, its clip folder and the manifest it becomes."""

    name: str  # MELD's name, also the utterance-id prefix and the ``session`` field
    csv: str
    folder: str
    manifest: str


SPLITS = {
    "train": Split("train", "train_sent_emo.csv", "train_splits", "train"),
    "dev": Split("dev", "dev_sent_emo.csv", "dev_splits_complete", "valid"),
    "test": Split("test", "test_sent_emo.csv", "output_repeated_splits_test", "test"),
}
# Asserted counts of the full release: CSV rows, and utterances kept after the undecodable
# train dia125_utt3 and the missing dev dia110_utt7.
FULL_RELEASE = {
    "rows": {"train": 9989, "dev": 1109, "test": 2610},
    "kept": {"train": 9988, "dev": 1108, "test": 2610},
}
PREFIX = "final_videos_test"  # carried by some test clips
CLIP_SUFFIXES = (".mp4",) + AUDIO_SUFFIXES
SKIP_REASONS = ("missing", "undecodable")
_CLIP_NAME = re.compile(rf"^({PREFIX})?dia(\d+)_utt(\d+)(\.\w+)$", re.IGNORECASE)


class ClipName(NamedTuple):
    """What a clip's file name says."""

    dialogue: int
    utterance: int
    prefixed: bool
    suffix: str


def parse_clip_name(name):
    """Parse a clip file name; None when it is not a clip of the release.

    Example
    -------
    >>> parse_clip_name("final_videos_testdia101_utt0.mp4")
    ClipName(dialogue=101, utterance=0, prefixed=True, suffix='.mp4')
    >>> parse_clip_name("dia0_utt12.WAV")
    ClipName(dialogue=0, utterance=12, prefixed=False, suffix='.wav')
    >>> parse_clip_name("._dia0_utt0.mp4") is None, parse_clip_name("dia0_utt0.txt") is None
    (True, True)
    """
    match = _CLIP_NAME.match(name)
    if match is None or match.group(4).lower() not in CLIP_SUFFIXES:
        return None
    prefix, dialogue, utterance, suffix = match.groups()
    return ClipName(int(dialogue), int(utterance), prefix is not None, suffix.lower())


class Layout(NamedTuple):
    """Where the release's files are below ``data_folder``."""

    csvs: dict  # split -> Path
    clips: dict  # split -> {(dialogue, utterance): Path} (the chosen file per id)
    prefixed: dict  # split -> set of (dialogue, utterance) whose chosen file carries the prefix


def find_files(data_folder, exclude=()):
    """Find the three CSVs and every clip, by name, anywhere below ``data_folder``.

    Where several files give the same clip id, the plain name beats the ``final_videos_test``
    prefix and an audio file (wav, flac) beats the mp4; the choice is logged. Two equally good
    files (the same name in two folders) are an error, and so are two different copies of a CSV
    (identical copies are fine).

    Arguments
    ---------
    data_folder : str or Path
        The ``MELD.Raw`` folder.
    exclude : iterable of Path
        Folders not to search (the audio cache, the save folder).

    Returns
    -------
    Layout
    """
    data_folder = Path(data_folder)
    if not data_folder.is_dir():
        raise MeldPrepError(f"{data_folder}: no such folder. Point data_folder at the unpacked "
                            "MELD.Raw folder (see the docstring of meld_prepare.py).")
    exclude = {Path(p).resolve() for p in exclude}
    csv_names = {s.csv: s.name for s in SPLITS.values()}
    folder_names = {s.folder: s.name for s in SPLITS.values()}
    found_csvs, candidates, folders = {}, {s: {} for s in SPLITS}, {s: [] for s in SPLITS}
    for dirpath, dirnames, filenames in os.walk(data_folder):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and (here / d).resolve() not in exclude)
        for name in filenames:
            if name in csv_names:
                found_csvs.setdefault(csv_names[name], []).append(here / name)
        split = folder_names.get(here.name)
        if split is None:
            continue
        folders[split].append(here)
        for name in sorted(filenames):
            clip = parse_clip_name(name)
            if clip is not None and not name.startswith("."):
                candidates[split].setdefault(clip[:2], []).append((clip, here / name))

    problems = []
    csvs = {}
    for split in SPLITS.values():
        paths = found_csvs.get(split.name, [])
        if not paths:
            problems.append(f"{split.csv}: not found below {data_folder}; it comes with "
                            "MELD.Raw.tar.gz. Point data_folder at the unpacked MELD.Raw folder")
        elif len({p.read_bytes() for p in paths}) > 1:
            problems.append(f"{split.csv}: {len(paths)} different copies "
                            f"({prep.short_list(paths)}); keep the one of the release")
        else:
            csvs[split.name] = paths[0]
            if len(paths) > 1:
                logger.info("%s: %d identical copies, reading %s", split.csv, len(paths), paths[0])
        if not folders[split.name]:
            archive = {"train": "train.tar.gz", "dev": "dev.tar.gz", "test": "test.tar.gz"}
            problems.append(f"{split.folder}/: no such folder below {data_folder}; unpack "
                            f"{archive[split.name]} of MELD.Raw there (cd {data_folder} && "
                            f"tar -xzf {archive[split.name]})")
    clips, prefixed = {}, {}
    for split, by_id in candidates.items():
        clips[split], prefixed[split] = {}, set()
        for key, options in sorted(by_id.items()):
            options.sort(key=lambda o: (o[0].prefixed, o[0].suffix not in AUDIO_SUFFIXES))
            best = options[0]
            if len(options) > 1:
                if (options[1][0].prefixed, options[1][0].suffix in AUDIO_SUFFIXES) == (
                        best[0].prefixed, best[0].suffix in AUDIO_SUFFIXES):
                    problems.append(f"{split} dia{key[0]}_utt{key[1]}: two equally good files "
                                    f"{best[1]} and {options[1][1]}; remove one")
                    continue
                logger.info("%s dia%d_utt%d: using %s (also there: %s)", split, *key, best[1],
                            ", ".join(str(o[1]) for o in options[1:]))
            clips[split][key] = best[1]
            if best[0].prefixed:
                prefixed[split].add(key)
    prep.raise_problems(problems, "MELD",
                        "See the docstring of meld_prepare.py for the expected tree",
                        error=MeldPrepError)
    return Layout(csvs, clips, prefixed)


# ---------------------------------------------------------------------------- the whole prep
def prepare_meld(
    data_folder,
    save_folder,
    hypotheses=None,
    expected_counts=FULL_RELEASE,
    audio_cache=None,
    num_workers=2,
    trim_miscut=("train", "dev"),
    miscut_margin=10.0,
    miscut_min_seconds=30.0,
    quiet_dbfs=-50.0,
    missing_hypothesis="error",
    skip_prep=False,
):
    """Write ``<save_folder>/{train,valid,test}.json`` for MELD (7 classes, official split).

    The CSVs and the clip tree are read and validated, the audio cache is completed, and only
    when every check passed are the manifests written; outputs already made with the same
    options are kept.

    Arguments
    ---------
    data_folder : str or Path
        The ``MELD.Raw`` folder (CSVs and clip folders anywhere below it).
    save_folder : str or Path
        Where the manifests, ``summary.json`` and ``identity.json`` go.
    hypotheses : str, Path or None
        ASR hypothesis cache keyed by utterance id (docs/CONTRACTS.md); None writes null.
    expected_counts : dict or None
        ``{"rows": {split: n}, "kept": {split: n}}`` (either key optional) asserted per MELD
        split name; :data:`FULL_RELEASE` by default, None for part of the corpus.
    audio_cache : str, Path or None
        Folder of the decoded 16 kHz wavs (default ``<save_folder>/audio16k``).
    num_workers : int
        Decoding processes.
    trim_miscut : iterable of str
        MELD splits whose mis-cut clips are trimmed to their CSV span (see the module docstring).
    miscut_margin, miscut_min_seconds : float
        A clip is mis-cut when it is longer than its CSV span + ``miscut_margin`` and longer
        than ``miscut_min_seconds``.
    quiet_dbfs : float
        Clips with a lower RMS level are flagged ``quiet`` (and kept).
    missing_hypothesis : str
        ``"error"`` (default) or ``"null"``: what to do for kept utterances without hypothesis.
    skip_prep : bool
        Do nothing (SpeechBrain recipe convention).

    Returns
    -------
    dict
        The summary (also ``summary.json``): rows, kept, skipped and flagged utterances with
        reasons, ignored clips, per-class counts, CSV encodings, decoding counts, options.
    """
    if skip_prep:
        return None
    if missing_hypothesis not in prep.MISSING_HYPOTHESIS_POLICIES:
        raise ValueError(f"missing_hypothesis must be one of {prep.MISSING_HYPOTHESIS_POLICIES}, "
                         f"got {missing_hypothesis!r}")
    trim_miscut = sorted(set(trim_miscut))
    if not set(trim_miscut) <= set(SPLITS):
        raise ValueError(f"trim_miscut must name MELD splits {tuple(SPLITS)}, got {trim_miscut}")
    data_folder, save_folder = Path(data_folder).resolve(), Path(save_folder)
    audio_cache = Path(audio_cache) if audio_cache else save_folder / "audio16k"
    options = json.loads(json.dumps({
        "data_folder": str(data_folder),
        "audio_cache": str(audio_cache.resolve()),
        **prep.hypothesis_options(hypotheses, "pass hypotheses=None", error=MeldPrepError),
        "expected_counts": expected_counts,
        "trim_miscut": trim_miscut,
        "miscut_margin": miscut_margin,
        "miscut_min_seconds": miscut_min_seconds,
        "quiet_dbfs": quiet_dbfs,
        "missing_hypothesis": missing_hypothesis,
    }))
    manifests = [save_folder / f"{s.manifest}.json" for s in SPLITS.values()]
    done = prep.load_if_done(save_folder, options, manifests)
    if done is not None:
        return done

    # 1. Everything that can be checked without decoding.
    logger.info("Reading MELD from %s", data_folder)
    layout = find_files(data_folder, exclude=(audio_cache, save_folder))
    rows, encodings = [], {}
    for split in SPLITS:
        split_rows, encodings[split] = read_csv(layout.csvs[split], split)
        rows += split_rows
        if encodings[split] != "utf-8":
            logger.info("%s: read as %s", layout.csvs[split], encodings[split])
    num_rows = {s: sum(r.split == s for r in rows) for s in SPLITS}
    check_counts(num_rows, (expected_counts or {}).get("rows"), "CSV rows",
                 hint="Use the CSVs of the MELD.Raw release, unmodified")
    hyps = _load_hypotheses(hypotheses) if hypotheses else None

    # 2. Match rows to clips; decode what is not in the cache yet, flag and trim (meld_audio).
    skipped, with_clip = {}, []
    for row in rows:
        if (row.dialogue, row.utterance) in layout.clips[row.split]:
            with_clip.append(row)
        else:
            skipped[row.utt_id] = ("missing", f"no dia{row.dialogue}_utt{row.utterance} clip "
                                              f"in {SPLITS[row.split].folder}/")
    row_keys = {(r.split, r.dialogue, r.utterance) for r in rows}
    ignored = {s: sorted(layout.clips[s][k].name for k in layout.clips[s]
                         if (s, *k) not in row_keys) for s in SPLITS}
    audio, undecodable, media = meld_audio.prepare_audio(
        with_clip, layout.clips, audio_cache, num_workers, trim_miscut, miscut_margin,
        miscut_min_seconds, quiet_dbfs)
    skipped.update(undecodable)

    # 3. Flags (prefixed name, then the media flags) and entries.
    entries, flagged = {s: {} for s in SPLITS}, {}
    for row in rows:
        if row.utt_id in skipped:
            continue
        wav, duration, flags = media[row.utt_id]
        if (row.dialogue, row.utterance) in layout.prefixed[row.split]:
            flags = ["prefixed", *flags]
        for flag in flags:
            flagged.setdefault(flag, []).append(row.utt_id)
        entries[row.split][row.utt_id] = _entry(row, wav, duration, flags)

    # 4. Checks on what is kept, then the outputs.
    for utt_id, (reason, detail) in skipped.items():
        logger.warning("skipping %s: %s (%s)", utt_id, reason, detail)
    for split, names in ignored.items():
        if names:
            logger.info("%s: %d clip(s) without a CSV row ignored: %s", split, len(names),
                        prep.short_list(names))
    kept = {s: len(e) for s, e in entries.items()}
    summary = _summary(num_rows, kept, entries, skipped, flagged, ignored, encodings, audio,
                       options)
    if (expected_counts or {}).get("kept") and kept != expected_counts["kept"]:
        logger.error("MELD summary: %s", json.dumps(
            {k: summary[k] for k in ("rows", "kept", "skipped", "skipped_ids")}))
    check_counts(kept, (expected_counts or {}).get("kept"), "kept utterances",
                 hint="The summary logged above lists the skipped clips and why; restore "
                      "missing or broken clips from the release")
    if hyps is not None:
        _fill_hypotheses(entries, hyps, hypotheses, missing_hypothesis)

    for split in SPLITS.values():
        atomic_write_json(save_folder / f"{split.manifest}.json", entries[split.name])
    prep.mark_done(save_folder, summary, options)
    logger.info("MELD: %s kept, skipped %s, flagged %s; written to %s", summary["manifests"],
                summary["skipped"], summary["flagged"], save_folder)
    return summary


def _entry(row, wav, duration, flags):
    """One manifest entry (docs/CONTRACTS.md schema, plus the MELD fields)."""
    return {
        "wav": os.path.abspath(wav),
        "duration": round(duration, 4),
        "emo": row.emotion,
        "speaker": row.speaker,
        "gender": None,
        "session": row.split,
        "transcript": row.transcript,
        "hypothesis": None,
        "dialogue": row.dialogue,
        "utterance": row.utterance,
        "start": row.start,
        "end": row.end,
        "flags": flags,
    }


def _load_hypotheses(path):
    """utt_id -> hypothesis from a cache, errors turned into :class:`MeldPrepError`."""
    from m4ser_lobes.text.hypotheses import load_hypotheses

    try:
        return load_hypotheses(path)
    except (OSError, ValueError) as error:
        raise MeldPrepError(str(error)) from error


def _fill_hypotheses(entries, hyps, path, missing_hypothesis):
    """Put the hypotheses in the entries; the missing ones raise or become null."""
    missing = [u for split in entries.values() for u in split if u not in hyps]
    message = (
        f"{path}: no hypothesis for {len(missing)} kept utterances ({prep.short_list(missing)}). "
        f"Complete the cache (`python -m m4ser_lobes.text.asr --manifest <save_folder>/*.json "
        f"--cache {path}` transcribes only the missing ids), or pass "
        "missing_hypothesis='null' to keep them with hypothesis null."
    )
    prep.check_missing_hypotheses(missing, path, missing_hypothesis, message, MeldPrepError)
    for split in entries.values():
        for utt_id, entry in split.items():
            entry["hypothesis"] = hyps.get(utt_id)


def _summary(num_rows, kept, entries, skipped, flagged, ignored, encodings, audio, options):
    """Counts (rows, kept, skips by reason, flags, ignored clips, classes) and the id lists."""
    reasons = Counter(reason for reason, _ in skipped.values())
    return {
        "rows": num_rows,
        "kept": kept,
        "manifests": {SPLITS[s].manifest: n for s, n in kept.items()},
        "per_class": {s: dict(sorted(Counter(e["emo"] for e in split.values()).items()))
                      for s, split in entries.items()},
        "skipped": {r: reasons[r] for r in sorted(reasons)},
        "skipped_ids": {u: f"{reason}: {detail}"
                        for u, (reason, detail) in sorted(skipped.items())},
        "flagged": {f: len(ids) for f, ids in sorted(flagged.items())},
        "flagged_ids": {f: sorted(ids) for f, ids in sorted(flagged.items())},
        "ignored_clips": {s: len(names) for s, names in ignored.items()},
        "ignored_clip_names": ignored,
        "csv_encoding": encodings,
        "audio": {
            "decoded": sum(r.decoded for r in audio.values()),
            "reused": sum(r.error is None and not r.decoded for r in audio.values()),
            "failed": sum(r.error is not None for r in audio.values()),
        },
        "options": options,
    }


def main(argv=None):
    """Command line: ``python recipes/MELD/meld_prepare.py DATA SAVE [--hypotheses H]``."""
    from m4ser_lobes.utils.cli import HelpFormatter

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("data_folder", type=Path, help="the unpacked MELD.Raw folder")
    parser.add_argument("save_folder", type=Path, help="where the manifests go")
    parser.add_argument("--hypotheses", type=Path, default=None,
                        help="ASR hypothesis cache (m4ser_lobes.text.asr format; default: none, "
                             "hypotheses are null)")
    parser.add_argument("--audio-cache", type=Path, default=None,
                        help="folder of decoded 16 kHz wavs (default: SAVE_FOLDER/audio16k)")
    parser.add_argument("--num-workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--trim-miscut", nargs="*", choices=tuple(SPLITS),
                        default=["train", "dev"],
                        help="splits whose mis-cut clips are trimmed to the CSV span "
                             "(the option alone: none)")
    parser.add_argument("--miscut-margin", type=float, default=10.0,
                        help="seconds beyond the CSV span that make a clip mis-cut")
    parser.add_argument("--miscut-min-seconds", type=float, default=30.0,
                        help="a mis-cut clip is also longer than this")
    parser.add_argument("--quiet-dbfs", type=float, default=-50.0,
                        help="RMS level below which a clip is flagged quiet (and kept)")
    parser.add_argument("--subset", action="store_true",
                        help="do not assert the row and kept counts of the full release")
    parser.add_argument("--missing-hypothesis", choices=prep.MISSING_HYPOTHESIS_POLICIES,
                        default="error", help="what to do for utterances without hypothesis")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        summary = prepare_meld(
            args.data_folder, args.save_folder, hypotheses=args.hypotheses,
            expected_counts=None if args.subset else FULL_RELEASE, audio_cache=args.audio_cache,
            num_workers=args.num_workers, trim_miscut=args.trim_miscut,
            miscut_margin=args.miscut_margin, miscut_min_seconds=args.miscut_min_seconds,
            quiet_dbfs=args.quiet_dbfs, missing_hypothesis=args.missing_hypothesis,
        )
    except MeldPrepError as error:
        sys.exit(f"error: {error}")
    print(json.dumps({k: summary[k] for k in ("rows", "kept", "manifests", "skipped", "flagged",
                                              "ignored_clips", "csv_encoding", "audio")},
                     indent=2))
    return summary



# ------------------------------------------------------------------------------ the corpus of a run
_BOOK = {"fingerprint": False}  # bookkeeping: not part of a run's fingerprint


class MeldSettings(BaseModel):
    """The keys of ``hparams/meld.yaml``, checked before any work (one-line errors)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    expected_counts: Annotated[Optional[Literal["full_release"]], Field(json_schema_extra=_BOOK)]
    audio_cache: Annotated[Optional[StrictStr], Field(json_schema_extra=_BOOK)]
    trim_miscut: List[Literal[tuple(SPLITS)]]
    num_emotions: Literal[len(EMOTIONS)]
    asr_model: Annotated[Optional[StrictStr], Field(json_schema_extra=_BOOK)] = None


def prepare_kwargs(values):
    """The :func:`prepare_meld` arguments of a run."""
    return {
        **prepare_folders(values),
        "expected_counts": FULL_RELEASE if values["expected_counts"] == "full_release" else None,
        "audio_cache": values["audio_cache"],
        "num_workers": max(values["num_workers"], 1),
        "trim_miscut": tuple(values["trim_miscut"]),
    }


#: MELD as a run sees it (``recipes/MELD/train.py``).
MELD = Corpus(name="MELD", data_file=HPARAMS / "meld.yaml", settings=MeldSettings,
              prepare=prepare_meld, prepare_kwargs=prepare_kwargs, metrics=("ACC", "W-F1", "UA"),
              paper_asr_model="openai/whisper-large-v2")


if __name__ == "__main__":
    main()
