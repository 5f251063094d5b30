"""Classify many audio files with an exported M4SER model: ``m4ser-classify``.

    m4ser-classify --model exported/m4ser-iemocap-fold1 clips/ extra.flac --output emotions.csv
    m4ser-classify --model org/m4ser-iemocap-fold1 --manifest test.json --output emotions.json
    m4ser-classify --model DIR clips/ --transcripts texts.csv --correct --output emotions.csv

Inputs: audio files, folders (searched recursively for ``*.wav *.flac *.ogg *.mp3``), and
SpeechBrain JSON manifests (``--manifest``; entries with ``wav`` and optionally a text field,
``hypothesis`` by default, see ``--text-key``; ``{data_root}`` in paths is replaced by
``--data-root``). Ids are file stems (folder inputs: paths relative to the folder without the
suffix), or the manifest keys.

Transcripts: ``--transcripts`` maps ids (or paths) to text, as a CSV with a header (an ``id``,
``path`` or ``wav`` column and a ``transcript``, ``text`` or ``hypothesis`` column), a JSON
object ``{id: text}``, or an ASR hypothesis cache (``{"hypotheses": {id: text}}``). It wins
over a manifest's text. An empty text (an empty CSV cell, ``""`` in JSON) is a given, empty
transcript, exactly as ``classify_file(path, transcript="")``: the ASR does not run for it
(an ASR cache holds ``""`` where Whisper heard no words). Inputs without any text (no row, no
key) are transcribed by the model's ASR: ``asr_model``/``asr_backend`` of the export, or
``--asr-model``/``--asr-backend``. It is loaded once, before the first file; when it cannot be
loaded (offline without a cached model, for instance) the run stops with exit status 2 and a
message saying what to do (give ``--transcripts``, or ``--asr-model`` a local Whisper folder).

Output (``--output``; ``.csv``, ``.jsonl`` or ``.json`` by suffix, or ``--format``): one record
per input with ``id``, ``path``, ``status`` (``ok`` or ``skipped``), ``label``, ``score``, one
probability per class, the ``transcript`` used and its ``transcript_source`` (``given``/``asr``),
``corrected`` with ``--correct``, and the ``error`` of a skipped input. It is written as the run
goes (:mod:`m4ser_lobes.inference.results`: a CSV row or JSON line appended per input; a JSON
document rewritten atomically as it grows), and running the same command again resumes: inputs
with an ``ok`` row are not classified again, ``skipped`` ones are tried again. ``--output`` is
checked before any model loads (a folder, a path under a file, a folder that cannot be written:
one error line, exit status 2). Missing, unreadable, empty or non-finite files are skipped with
their reason (also logged) instead of stopping the run; a model that cannot be loaded (a missing
``label_encoder.txt``, a ``hyperparams.yaml`` that is not what ``m4ser-export`` writes, see
:mod:`m4ser_lobes.inference.safety`) or a bad option stops it with one error before any input is
classified. Exit status: 0 when at least one file has an ``ok`` row, 1 when none has, 2 on a
usage error or a model (emotion or ASR) that cannot be loaded.

Each file is classified on its own (``M4SERClassifier.classify_file``: any sample rate and
channel count, long files as averaged windows), so a file's result does not depend on the others;
its ``transcript`` and ``corrected`` are what ``M4SERClassifier.transcribe_file`` returns for it.
The file is decoded once and the ASR runs at most once per file for both.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import NamedTuple

from m4ser_lobes.data.audio import AudioError
from m4ser_lobes.inference.results import FORMATS, OutputError, ResultsFile
from m4ser_lobes.text.transcribers import BACKENDS
from m4ser_lobes.utils.cli import command_parser, log_to_console

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
ID_COLUMNS = ("id", "path", "wav")
TEXT_COLUMNS = ("transcript", "text", "hypothesis")


class Item(NamedTuple):
    """One input to classify."""

    id: str
    path: str
    transcript: str | None = None


def collect_inputs(paths=(), manifests=(), text_key="hypothesis", data_root=None):
    """Expand files, folders and manifests into :class:`Item` s (ids made unique).

    A path that does not exist is kept (it is reported as skipped, not dropped silently).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "d" / "s").mkdir(parents=True)
    >>> for name in ("d/a.wav", "d/s/b.flac", "d/notes.txt", "c.wav"):
    ...     _ = (tmp / name).write_bytes(b"")
    >>> [i.id for i in collect_inputs([tmp / "d", tmp / "c.wav", tmp / "gone.wav"])]
    ['a', 's/b', 'c', 'gone']
    """
    items = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                logger.warning("%s: no %s files", path, "/".join(AUDIO_SUFFIXES))
            items += [Item(p.relative_to(path).with_suffix("").as_posix(), str(p)) for p in found]
        else:
            items.append(Item(path.stem, str(path)))
    for manifest in manifests:
        with open(manifest, encoding="utf-8") as fin:
            entries = json.load(fin)
        if not isinstance(entries, dict):
            raise ValueError(f"{manifest}: a SpeechBrain manifest is a JSON object keyed by id")
        for utt_id, entry in entries.items():
            if not isinstance(entry, dict) or "wav" not in entry:
                raise ValueError(f"{manifest}: entry {utt_id!r} has no 'wav' field")
            wav = str(entry["wav"])
            if "{data_root}" in wav:
                if data_root is None:
                    raise ValueError(f"{manifest}: paths use {{data_root}}; pass --data-root")
                wav = wav.replace("{data_root}", str(data_root))
            items.append(Item(str(utt_id), wav, entry.get(text_key)))
    return _unique(items)


def _unique(items):
    """Give colliding ids their path instead (and a counter as a last resort)."""
    counts = {}
    for item in items:
        counts[item.id] = counts.get(item.id, 0) + 1
    seen, unique = set(), []
    for item in items:
        utt_id = item.id if counts[item.id] == 1 else item.path
        base, k = utt_id, 1
        while utt_id in seen:
            k += 1
            utt_id = f"{base}#{k}"
        seen.add(utt_id)
        unique.append(item._replace(id=utt_id))
    return unique


def read_transcripts(path):
    """Read a transcript mapping (CSV, JSON object or hypothesis cache): key -> text.

    Example
    -------
    An empty text cell is kept: it is a given, empty transcript (module docstring); a row
    without the text column gives none.

    >>> path = getfixture("tmp_path") / "t.csv"
    >>> _ = path.write_text("id,transcript\\na,oh no\\nb,\\nc\\n")
    >>> read_transcripts(path)
    {'a': 'oh no', 'b': ''}
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        with open(path, encoding="utf-8") as fin:
            data = json.load(fin)
        if isinstance(data, dict) and isinstance(data.get("hypotheses"), dict):
            data = data["hypotheses"]
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object {{id: text}} or a hypothesis cache")
        return {str(k): v for k, v in data.items() if isinstance(v, str)}
    with open(path, encoding="utf-8", newline="") as fin:
        reader = csv.DictReader(fin)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        key = next((c for c in ID_COLUMNS if c in fields), None)
        text = next((c for c in TEXT_COLUMNS if c in fields), None)
        if key is None or text is None:
            raise ValueError(
                f"{path}: the CSV header needs one of {ID_COLUMNS} and one of {TEXT_COLUMNS}, "
                f"got {reader.fieldnames}"
            )
        names = dict(zip(fields, reader.fieldnames))
        column = names[text]
        return {row[names[key]]: row[column] for row in reader if row.get(column) is not None}


def attach_transcripts(items, transcripts):
    """Give each item the text mapped to its id, its path (as given or resolved) or its stem."""
    out = []
    for item in items:
        keys = (item.id, item.path, os.path.abspath(item.path), Path(item.path).stem)
        text = next((transcripts[k] for k in keys if k in transcripts), item.transcript)
        out.append(item._replace(transcript=text))
    return out


def iter_records(classifier, items, correct=False, progress=True):
    """Classify the items one by one, yielding each record as soon as it is known.

    Unreadable inputs become ``skipped`` records with their reason. An ASR model that cannot be
    loaded is no reason to skip a file: its
    :class:`~m4ser_lobes.inference.asr.ASRUnavailableError` stops the run.

    Yields
    ------
    dict
        One record per item (see the module docstring).
    """
    from tqdm import tqdm

    from m4ser_lobes.inference.asr import ASRUnavailableError

    classes = classifier.classes
    for item in tqdm(items, desc="m4ser-classify", unit="file", disable=not progress):
        record = {"id": item.id, "path": item.path}
        try:
            # one decode and at most one ASR pass: the prediction, the text it read, its correction
            (probs, score, _, labels), info = classifier.classify_and_transcribe_file(
                item.path, item.transcript, correct=correct
            )
        except ASRUnavailableError:
            raise
        except (AudioError, RuntimeError, ValueError, OSError) as err:
            reason = str(err) if isinstance(err, AudioError) else f"{type(err).__name__}: {err}"
            logger.warning("skipped %s: %s", item.id, reason)
            yield dict(record, status="skipped", error=reason)
            continue
        yield dict(
            record,
            status="ok",
            label=labels[0],
            score=float(score[0]),
            probabilities=dict(zip(classes, (float(p) for p in probs[0]))),
            transcript=info.text,
            transcript_source=info.source,
            **({"corrected": info.corrected} if correct else {}),
        )


def classify_items(classifier, items, correct=False, progress=True):
    """:func:`iter_records` as a list."""
    return list(iter_records(classifier, items, correct, progress))


def _named(items, shown=3):
    """``a, b, c and 2 more``: the ids of some items, for a message.

    Example
    -------
    >>> _named([Item(i, i) for i in "abcde"]), _named([Item("a", "a")])
    ('a, b, c and 2 more', 'a')
    """
    names = ", ".join(item.id for item in items[:shown])
    return names + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _positive(kind):
    """An argparse type: a finite number > 0 (``float``) or >= 1 (``int``)."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser():
    """The ``m4ser-classify`` argument parser."""
    parser = command_parser(
        "m4ser-classify",
        "m4ser_lobes.inference.classify",
        "Classify the emotion of audio files with an exported M4SER model.",
    )
    parser.add_argument("inputs", nargs="*", help="audio files and folders (searched recursively)")
    parser.add_argument("--model", required=True, help="export folder or Hugging Face repo id")
    parser.add_argument(
        "--manifest", nargs="+", default=[], help="SpeechBrain JSON manifests (default: none)"
    )
    parser.add_argument(
        "--text-key",
        default="hypothesis",
        help="manifest field holding the text (`transcript` for human transcripts)",
    )
    parser.add_argument(
        "--data-root", help="replaces {data_root} in manifest paths (default: none)"
    )
    parser.add_argument(
        "--transcripts",
        help="CSV (id,transcript) or JSON ({id: text}) mapping ids/paths to transcripts; an "
        "empty text is a given empty transcript (default: none; inputs without text go "
        "through the ASR model)",
    )
    parser.add_argument(
        "--asr-model",
        help="Whisper model for inputs without a transcript: a local folder (offline) or a Hub "
        "id; a CTranslate2 folder or size with --asr-backend faster-whisper (default: the "
        "export's asr_model)",
    )
    parser.add_argument(
        "--asr-backend",
        choices=BACKENDS,
        help="ASR implementation (default: the export's asr_backend, else transformers)",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="results file (.csv, .jsonl or .json), written as the run goes; the same command "
        "run again resumes it",
    )
    parser.add_argument(
        "--format", choices=FORMATS, help="output format (default: --output's suffix, else csv)"
    )
    parser.add_argument(
        "--correct",
        action="store_true",
        help="also output the AED/AEC correction of each transcript",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    parser.add_argument(
        "--savedir", help="where to link/copy the fetched model files (default: none)"
    )
    parser.add_argument(
        "--window-seconds",
        type=_positive(float),
        help="long-audio window in seconds, > 0 (default: the export's)",
    )
    parser.add_argument(
        "--max-windows",
        type=_positive(int),
        help="long-audio window cap, >= 1 (default: the export's)",
    )
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="load a model whose hyperparams.yaml is not what m4ser-export writes (only for a "
        "folder you wrote yourself: HyperPyYAML runs what it names)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Entry point of ``m4ser-classify`` (see the module docstring); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_console()

    def fail(message):
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2

    if not args.inputs and not args.manifest:
        parser.error("give audio files, folders or --manifest")
    try:
        results = ResultsFile(args.output, args.format)  # before any work
        items = collect_inputs(args.inputs, args.manifest, args.text_key, args.data_root)
        if args.transcripts:
            items = attach_transcripts(items, read_transcripts(args.transcripts))
        todo = results.pending(items)
    except OutputError as err:
        return fail(err)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    if not items:
        parser.error("no audio files found in the inputs")

    from m4ser_lobes.inference.asr import ASRUnavailableError
    from m4ser_lobes.inference.classifier import M4SERClassifier

    overrides = {}
    if args.window_seconds is not None:
        overrides["window_seconds"] = args.window_seconds
    if args.max_windows is not None:
        overrides["max_windows"] = args.max_windows
    try:
        classifier = M4SERClassifier.from_hparams(
            source=args.model,
            savedir=args.savedir,
            overrides=overrides,
            run_opts={"device": args.device} if args.device else None,
            trust_code=args.trust_code,
        )
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as err:
        return fail(f"cannot load the model {args.model}: {err}")
    if args.correct and not getattr(classifier.hparams, "has_corrector", False):
        parser.error(
            f"{args.model} has no transcript corrector (trained or exported without AED/AEC)"
        )
    classifier.set_asr(args.asr_model, args.asr_backend)
    untranscribed = [item for item in todo if item.transcript is None]
    try:
        if untranscribed and classifier.model.uses_text:
            logger.info("%d of %d inputs have no transcript (%s): loading the ASR model",
                        len(untranscribed), len(todo), _named(untranscribed))
            classifier.load_asr()
        results.start(classifier.classes, args.correct, model=args.model)
    except ASRUnavailableError as err:
        return fail(
            f"{len(untranscribed)} of {len(todo)} inputs have no transcript "
            f"({_named(untranscribed)}), so the ASR model must run, but {err}"
        )
    except OutputError as err:
        return fail(err)
    if len(todo) < len(items):
        logger.info(
            "%d of %d inputs are already in %s; classifying the other %d",
            len(items) - len(todo),
            len(items),
            args.output,
            len(todo),
        )
    skipped = 0
    try:
        for record in iter_records(classifier, todo, args.correct, not args.no_progress):
            results.add(record)
            skipped += record["status"] != "ok"
    except ASRUnavailableError as err:
        return fail(f"the ASR model stopped working: {err}")
    finally:
        results.close()
    done = len(items) - skipped
    logger.info(
        "classified %d of %d inputs (%d skipped); results in %s",
        done,
        len(items),
        skipped,
        args.output,
    )
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
