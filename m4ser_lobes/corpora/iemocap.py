"""IEMOCAP data preparation: 4-class JSON manifests for the 5-fold leave-one-session-out protocol.

Obtaining the corpus
--------------------
IEMOCAP is distributed by USC SAIL on request (https://sail.usc.edu/iemocap/, "release form");
unpack ``IEMOCAP_full_release.tar.gz`` and pass the ``IEMOCAP_full_release`` folder as
``data_folder``. Only the files below are read::

    IEMOCAP_full_release/
      Session{1..5}/
        dialog/EmoEvaluation/<dialog>.txt      # labels: one block per utterance
                                               # (subfolders and dot-files there are ignored)
        dialog/transcriptions/<dialog>.txt     # reference transcripts
        sentences/wav/<dialog>/<utt>.wav       # 16 kHz mono 16-bit PCM, one file per utterance

Utterance ids are ``<dialog>_<F|M><3 digits>`` (``Ses01F_impro01_F000``); the letter of the
last ``_`` part is the speaker's gender (the letter after ``Ses0{s}`` only names the actor who
wore the motion capture). Dialogs such as ``Ses03M_impro05a`` make fixed character positions
wrong, so ids are split on ``_``.

Labels and counts
-----------------
The label of an utterance is the majority label in its EmoEvaluation block header
``[START - END]\\tUTT_ID\\tEMO\\t[V, A, D]``. Four classes are kept, ``hap`` and ``exc`` merged
(:data:`EMOTION_MAP`): 5531 utterances on the full release, neu 1708, ang 1103, sad 1084,
hap 595 + exc 1041; per session 1085 / 1023 / 1151 / 1031 / 1241 (asserted; pass
``expected_utterances=None`` for a subset of the corpus).

Protocol
--------
Five folds, fold k tests on Session k and trains on the four others. The validation set is held
out from the training sessions, stratified by emotion and seeded (``valid_ratio``, default
10 %). Selecting the model on the test session, as several published systems do, is available
only as ``validation="test_fold"`` and logs a warning.

ASR hypotheses come from a cache written by ``m4ser_lobes.text.asr`` (or by any ASR, same JSON
format; docs/CONTRACTS.md). The ASR reads manifests, so the first run goes in two steps:
prepare without ``hypotheses``, run ``python -m m4ser_lobes.text.asr --manifest
<save_folder>/fold1/*.json --cache hyps.json``, prepare again with ``hypotheses=hyps.json``
(a changed option or cache content makes the prep run again). ``train.py`` prepares into
``<results_folder>/prepared/<key>``, the key hashing every option that shapes the manifests
(``prepare_folder`` in ``hparams/m4ser.yaml``), so runs with other split seeds or caches never
overwrite each other's manifests. The defaults (:data:`DEFAULT_SEED` ...) are the YAML's.

Outputs: ``<save_folder>/fold<k>/{train,valid,test}.json`` (SpeechBrain JSON manifests keyed by
utterance id: ``wav``, ``duration``, ``emo``, ``speaker``, ``gender``, ``session``,
``transcript``, ``hypothesis``), ``summary.json`` and ``identity.json``. Work already done
with the same options (and the same hypothesis cache content) is skipped; the corpus itself is not
hashed, so delete ``save_folder`` after changing files inside ``data_folder``.

Example
-------
>>> from m4ser_lobes.testing.mini_iemocap import generate_iemocap
>>> tmp = getfixture("tmp_path")
>>> corpus = generate_iemocap(tmp / "data", utterances_per_dialog=4)
>>> summary = prepare_iemocap(corpus.root, tmp / "prep", hypotheses=corpus.hypotheses,
...                           expected_utterances=None)
>>> summary["num_utterances"], summary["folds"]["fold1"]
(80, {'train': 57, 'valid': 7, 'test': 16})
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StrictInt, StrictStr

from m4ser_lobes.corpora import HPARAMS, Corpus, prepare_folders
from m4ser_lobes.corpora.iemocap_files import (  # noqa: F401 (public names of the IEMOCAP prep)
    EvaluationHeader,
    IemocapPrepError,
    Transcription,
    Utterance,
    _HEADER,
    _TRANSCRIPTION,
    _UTT_ID,
    dialog_of,
    gender_of,
    parse_evaluation_header,
    parse_transcription_line,
    session_of,
    speaker_of,
)
from m4ser_lobes.data import prep
from m4ser_lobes.utils.cli import HelpFormatter
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)

# Four classes: happiness and excitement merged (the usual IEMOCAP 4-class setup).
EMOTION_MAP = {"neu": "neu", "ang": "ang", "sad": "sad", "hap": "hap", "exc": "hap"}
# Every code that appears in EmoEvaluation headers; the ones outside EMOTION_MAP are dropped.
KNOWN_LABELS = {"neu", "hap", "exc", "sad", "ang", "fru", "sur", "fea", "dis", "oth", "xxx"}
UTTERANCES_PER_SESSION = {1: 1085, 2: 1023, 3: 1151, 4: 1031, 5: 1241}
NUM_UTTERANCES = 5531
CLASS_COUNTS = {"neu": 1708, "ang": 1103, "sad": 1084, "hap": 1636}  # hap = 595 hap + 1041 exc
assert sum(UTTERANCES_PER_SESSION.values()) == NUM_UTTERANCES == sum(CLASS_COUNTS.values())

SAMPLE_RATE = 16000
SPLITS = ("train", "valid", "test")
FOLDS = tuple(sorted(UTTERANCES_PER_SESSION))
VALIDATION_MODES = ("train_sessions", "test_fold")
NUM_EMOTIONS = len(set(EMOTION_MAP.values()))

# One default per option, shared by prepare_iemocap, the command line and hparams/iemocap.yaml
# (tests/unit/corpora/test_iemocap_prepare.py checks that hparams/iemocap.yaml holds the same values).
DEFAULT_SEED = 1986
DEFAULT_VALIDATION = "train_sessions"
DEFAULT_VALID_RATIO = 0.1
DEFAULT_EXPECTED_UTTERANCES = UTTERANCES_PER_SESSION
_BOOK = {"fingerprint": False}  # bookkeeping: not part of a run's fingerprint

def read_corpus(data_folder):
    """Collect the kept (4-class) utterances of an IEMOCAP release, validating as it goes.

    Arguments
    ---------
    data_folder : str or Path
        The ``IEMOCAP_full_release`` folder.

    Returns
    -------
    utterances : dict
        utt_id -> :class:`Utterance`, sorted by id.
    dropped : collections.Counter
        Labels that were filtered out, with counts.
    """
    data_folder = Path(data_folder)
    sessions = sorted(p for p in data_folder.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise IemocapPrepError(
            f"No Session1..Session5 folders in {data_folder}. Point data_folder at the "
            "unpacked IEMOCAP_full_release folder (train.py: --data_folder=<path>; "
            "iemocap_prepare.py: its first argument; see the docstring of iemocap_prepare.py)."
        )
    utterances, dropped, problems = {}, Counter(), []
    for session_dir in sessions:
        evaluation_dir = session_dir / "dialog" / "EmoEvaluation"
        files = _evaluation_files(evaluation_dir)
        if not files:
            problems.append(f"{evaluation_dir}: no <dialog>.txt label files")
        for evaluation_file in files:
            for utt in _read_dialog(session_dir, evaluation_file, dropped, problems):
                if utt.utt_id in utterances:
                    raise IemocapPrepError(f"{evaluation_file}: {utt.utt_id} is labelled twice "
                                           "(also in another EmoEvaluation file); fix the file.")
                utterances[utt.utt_id] = utt
    prep.raise_problems(problems, "IEMOCAP",
                        "Fix or restore these files (re-extract the release)",
                        error=IemocapPrepError)
    return dict(sorted(utterances.items())), dropped


def _read_dialog(session_dir, evaluation_file, dropped, problems):
    """Kept utterances of one dialog; filtered labels counted in ``dropped``, problems listed."""
    dialog = evaluation_file.stem
    kept = []
    for header in _read_headers(evaluation_file):
        if header.label in EMOTION_MAP:
            kept.append(header)
        else:
            dropped[header.label] += 1
    if not kept:
        return []
    transcription_file = session_dir / "dialog" / "transcriptions" / f"{dialog}.txt"
    if transcription_file.is_file():
        transcripts = _read_transcriptions(transcription_file)
    else:
        problems.append(f"{transcription_file}: missing (labels in {evaluation_file})")
        transcripts = None
    utts = []
    for h in kept:
        if _UTT_ID.match(h.utt_id) is None:
            problems.append(f"{evaluation_file}: {h.utt_id!r} is not an utterance id")
            continue
        if dialog_of(h.utt_id) != dialog:
            problems.append(f"{evaluation_file}: {h.utt_id} belongs to another dialog")
            continue
        wav = session_dir / "sentences" / "wav" / dialog / f"{h.utt_id}.wav"
        if not wav.is_file():
            problems.append(f"{wav}: missing")
        if transcripts is not None and h.utt_id not in transcripts:
            problems.append(f"{transcription_file}: no line for {h.utt_id}")
        utts.append(Utterance(
            h.utt_id, EMOTION_MAP[h.label], session_of(h.utt_id), speaker_of(h.utt_id),
            gender_of(h.utt_id), Path(os.path.abspath(wav)), (transcripts or {}).get(h.utt_id, ""),
        ))
    return utts


def _evaluation_files(evaluation_dir):
    """``*.txt`` files directly in ``EmoEvaluation`` (not the subfolders, not ``._`` files)."""
    if not evaluation_dir.is_dir():
        return []
    return sorted(p for p in evaluation_dir.iterdir()
                  if p.is_file() and p.suffix == ".txt" and not p.name.startswith("."))


def _read_lines(path):
    """Lines of a text file (CRLF tolerated; latin-1 fallback for stray bytes)."""
    if not path.is_file():
        raise IemocapPrepError(f"{path}: missing. Re-extract this file from the release.")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def _read_headers(path):
    """Block headers of one EmoEvaluation file, with the line number of malformed ones."""
    headers = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.startswith("["):
            continue  # % header, evaluator lines, blank lines
        header = parse_evaluation_header(line)
        if header is None:
            raise IemocapPrepError(f"{path}:{number}: cannot parse block header {line!r}; "
                                   "expected '[START - END]\\tUTT_ID\\tEMO\\t[V, A, D]'.")
        if header.label not in KNOWN_LABELS:
            raise IemocapPrepError(f"{path}:{number}: unknown emotion code {header.label!r}; "
                                   f"known codes are {sorted(KNOWN_LABELS)}.")
        headers.append(header)
    return headers


def _read_transcriptions(path):
    """utt_id -> raw text of one transcription file; lines that do not match are skipped."""
    parsed = (parse_transcription_line(line) for line in _read_lines(path))
    return {t.utt_id: t.text for t in parsed if t is not None}


def read_durations(utterances):
    """Return utt_id -> duration in seconds, read from the wav headers.

    Raises :class:`IemocapPrepError` naming every unreadable file, or every file that is not
    16 kHz mono.
    """
    import soundfile as sf

    durations, problems = {}, []
    for utt_id, utt in utterances.items():
        try:
            info = sf.info(str(utt.wav))
        except Exception as error:  # soundfile raises several types for corrupt files
            problems.append(f"{utt.wav}: unreadable ({error})")
            continue
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            problems.append(f"{utt.wav}: {info.samplerate} Hz, {info.channels} channels "
                            f"(expected {SAMPLE_RATE} Hz mono)")
        elif info.frames == 0:
            problems.append(f"{utt.wav}: empty")
        durations[utt_id] = round(info.frames / info.samplerate, 4)
    prep.raise_problems(problems, "IEMOCAP",
                        "Replace these wav files with intact copies from the release",
                        error=IemocapPrepError)
    return durations


def load_hypotheses(path, utt_ids, missing_hypothesis="error"):
    """Read an ASR hypothesis cache and return utt_id -> hypothesis (None when missing).

    Arguments
    ---------
    path : str or Path
        JSON cache (docs/CONTRACTS.md; only its ``hypotheses`` object is required).
    utt_ids : iterable of str
        The ids that need a hypothesis.
    missing_hypothesis : str
        ``"error"`` (default): raise, naming the ids; ``"null"``: keep them with ``None``.

    Returns
    -------
    dict
    """
    from m4ser_lobes.text.hypotheses import load_cache  # the one validator of the cache format

    path = Path(path)
    try:
        hypotheses = load_cache(path)["hypotheses"]
    except (OSError, ValueError) as error:
        raise IemocapPrepError(str(error)) from error
    utt_ids = list(utt_ids)
    missing = [u for u in utt_ids if u not in hypotheses]
    message = (
        f"{path}: no hypothesis for {len(missing)} of {len(utt_ids)} utterances "
        f"({prep.short_list(missing)}). Complete the cache (`python -m m4ser_lobes.text.asr "
        f"--manifest <fold1 manifests> --cache {path}` transcribes only the missing ids), or "
        "train on human transcripts (train.py: --hypotheses_file=null --text_source=transcript "
        "--use_aed=False --use_aec=False), "
        "or keep them with hypothesis null (iemocap_prepare.py: --missing-hypothesis null; "
        "prepare_iemocap: missing_hypothesis='null')."
    )
    prep.check_missing_hypotheses(missing, path, missing_hypothesis, message, IemocapPrepError)
    return {u: hypotheses.get(u) for u in utt_ids}


def split_fold(utterances, fold, validation=DEFAULT_VALIDATION, valid_ratio=DEFAULT_VALID_RATIO,
               seed=DEFAULT_SEED):
    """Return ``{"train": ids, "valid": ids, "test": ids}`` for fold ``fold`` (tests Session k).

    Arguments
    ---------
    utterances : dict
        utt_id -> :class:`Utterance`.
    fold : int
        1..5; the test set is Session ``fold``.
    validation : str
        ``"train_sessions"``: a stratified, seeded ``valid_ratio`` part of the training
        sessions; ``"test_fold"``: the test session itself (model selection on the test set;
        logged as a warning).
    valid_ratio : float
        Share of the training sessions held out for validation.
    seed : int
        Seed of the stratified split.

    Returns
    -------
    dict of str -> list of str (sorted ids)
    """
    from sklearn.model_selection import train_test_split

    if validation not in VALIDATION_MODES:
        raise ValueError(f"validation must be one of {VALIDATION_MODES}, got {validation!r}")
    test = sorted(u for u, x in utterances.items() if x.session == fold)
    train = sorted(u for u, x in utterances.items() if x.session != fold)
    if not test or not train:
        raise IemocapPrepError(f"fold {fold}: Session{fold} gives {len(test)} test and "
                               f"{len(train)} training utterances; both must be non-empty.")
    if validation == "test_fold":
        logger.warning("fold %d: validation on the test session (Session%d); the model is "
                       "selected on its test data, results are optimistic", fold, fold)
        return {"train": train, "valid": list(test), "test": test}
    if not 0 < valid_ratio < 1:
        raise ValueError(f"valid_ratio must be in (0, 1), got {valid_ratio}")
    try:
        train, valid = train_test_split(
            train, test_size=valid_ratio, random_state=seed,
            stratify=[utterances[u].emo for u in train],
        )
    except ValueError as error:
        raise IemocapPrepError(
            f"fold {fold}: cannot hold out a stratified {valid_ratio:.0%} of "
            f"{len(train)} training utterances ({error}); raise the ratio (train.py: "
            "--valid_ratio=<r>; iemocap_prepare.py: --valid-ratio <r>) or use more data."
        ) from error
    return {"train": sorted(train), "valid": sorted(valid), "test": test}


def check_counts(utterances, expected_utterances=DEFAULT_EXPECTED_UTTERANCES):
    """Assert the number of kept utterances (per session when a mapping is given).

    Arguments
    ---------
    utterances : dict
        utt_id -> :class:`Utterance`.
    expected_utterances : dict, int or None
        ``{session: count}``, a total, or None to accept any number (a subset of the corpus).

    Example
    -------
    >>> check_counts({}, expected_utterances=None)
    >>> try:
    ...     check_counts({}, expected_utterances=3)
    ... except IemocapPrepError as error:
    ...     print(error)
    found 0 utterances of the 4 classes, expected 3. Check that every Session folder ...
    """
    if expected_utterances is None:
        return
    hint = ("Check that every Session folder was extracted completely; for a subset of "
            "the corpus pass expected_utterances=None (train.py: --expected_utterances=null; "
            "iemocap_prepare.py: --subset).")
    if isinstance(expected_utterances, int):
        if len(utterances) != expected_utterances:
            raise IemocapPrepError(f"found {len(utterances)} utterances of the 4 classes, "
                                   f"expected {expected_utterances}. {hint}")
        return
    found = Counter(u.session for u in utterances.values())
    wrong = {s: (found.get(s, 0), n) for s, n in expected_utterances.items()
             if found.get(s, 0) != n}
    if wrong or set(found) - set(expected_utterances):
        detail = ", ".join(f"Session{s}: {f} (expected {n})" for s, (f, n) in sorted(wrong.items()))
        raise IemocapPrepError(
            f"found {len(utterances)} utterances of the 4 classes, expected "
            f"{sum(expected_utterances.values())} ({detail or 'unexpected sessions'}). {hint}"
        )


def prepare_iemocap(
    data_folder,
    save_folder,
    hypotheses=None,
    folds=FOLDS,
    validation=DEFAULT_VALIDATION,
    valid_ratio=DEFAULT_VALID_RATIO,
    seed=DEFAULT_SEED,
    expected_utterances=DEFAULT_EXPECTED_UTTERANCES,
    missing_hypothesis="error",
    skip_prep=False,
):
    """Write ``<save_folder>/fold<k>/{train,valid,test}.json`` for IEMOCAP (4 classes).

    Everything is read and validated before anything is written; outputs that are already
    there and were made with the same options are kept.

    Arguments
    ---------
    data_folder : str or Path
        The ``IEMOCAP_full_release`` folder.
    save_folder : str or Path
        Where the fold folders, ``summary.json`` and ``identity.json`` go.
    hypotheses : str, Path or None
        ASR hypothesis cache (docs/CONTRACTS.md); None writes ``"hypothesis": null``.
    folds : iterable of int
        Folds to write (fold k tests on Session k).
    validation : str
        ``"train_sessions"`` (default, stratified seeded hold-out of the training sessions) or
        ``"test_fold"`` (validate on the test session; logged as a warning).
    valid_ratio : float
        Share of the training sessions used for validation.
    seed : int
        Seed of the validation split.
    expected_utterances : dict, int or None
        Asserted number of kept utterances: :data:`UTTERANCES_PER_SESSION` for the full
        release (5531), an int total, or None for a subset.
    missing_hypothesis : str
        ``"error"`` or ``"null"``, see :func:`load_hypotheses`.
    skip_prep : bool
        Do nothing (SpeechBrain recipe convention).

    Returns
    -------
    dict
        The summary: counts per class, session, gender and fold, dropped labels, options.
    """
    if skip_prep:
        return None
    save_folder = Path(save_folder)
    folds = sorted(set(int(k) for k in folds))
    if isinstance(expected_utterances, dict):
        expected_utterances = {int(s): n for s, n in expected_utterances.items()}
    if not set(folds) <= set(UTTERANCES_PER_SESSION):
        raise ValueError(f"folds must be within 1..5, got {folds}")
    options = {
        "data_folder": str(Path(data_folder).resolve()),
        **prep.hypothesis_options(hypotheses, error=IemocapPrepError, without=(
            "prepare without it (train.py: --hypotheses_file=null --text_source=transcript "
            "--use_aed=False --use_aec=False; "
            "iemocap_prepare.py: leave out --hypotheses)")),
        "folds": folds,
        "validation": validation,
        "valid_ratio": valid_ratio,
        "seed": seed,
        "expected_utterances": expected_utterances,
        "missing_hypothesis": missing_hypothesis,
    }
    options = json.loads(json.dumps(options))  # the form it has once written (int keys -> str)
    manifests = [save_folder / f"fold{k}" / f"{name}.json" for k in folds for name in SPLITS]
    done = prep.load_if_done(save_folder, options, manifests)
    if done is not None:
        return done

    logger.info("Reading IEMOCAP from %s", data_folder)
    utterances, dropped = read_corpus(data_folder)
    check_counts(utterances, expected_utterances)
    durations = read_durations(utterances)
    hyps = (load_hypotheses(hypotheses, utterances, missing_hypothesis)
            if hypotheses else dict.fromkeys(utterances))
    entries = {u: _entry(x, durations[u], hyps[u]) for u, x in utterances.items()}
    splits = {k: split_fold(utterances, k, validation, valid_ratio, seed) for k in folds}

    for k, split in splits.items():
        for name in SPLITS:
            atomic_write_json(save_folder / f"fold{k}" / f"{name}.json",
                               {u: entries[u] for u in split[name]})
    summary = _summary(utterances, dropped, splits, options)
    prep.mark_done(save_folder, summary, options)
    logger.info("IEMOCAP: %d utterances %s, folds %s written to %s", len(utterances),
                summary["per_class"], folds, save_folder)
    return summary


def _entry(utt, duration, hypothesis):
    """One manifest entry (docs/CONTRACTS.md schema)."""
    return {
        "wav": str(utt.wav),
        "duration": duration,
        "emo": utt.emo,
        "speaker": utt.speaker,
        "gender": utt.gender,
        "session": utt.session,
        "transcript": utt.transcript,
        "hypothesis": hypothesis,
    }


def _summary(utterances, dropped, splits, options):
    """Counts per class, session, gender and fold split."""
    values = list(utterances.values())
    return {
        "num_utterances": len(values),
        "per_class": dict(sorted(Counter(u.emo for u in values).items())),
        "per_session": {str(s): n for s, n in sorted(Counter(u.session for u in values).items())},
        "per_gender": dict(sorted(Counter(u.gender for u in values).items())),
        "dropped_labels": dict(sorted(dropped.items())),
        "folds": {f"fold{k}": {name: len(ids) for name, ids in split.items()}
                  for k, split in splits.items()},
        "options": options,
    }


def build_parser():
    """The command line of :func:`main`; its defaults are the module's (and the YAML's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)  # defaults shown
    parser.add_argument("data_folder", type=Path, help="the IEMOCAP_full_release folder")
    parser.add_argument("save_folder", type=Path, help="where fold<k>/{train,valid,test}.json go")
    parser.add_argument("--hypotheses", type=Path, help="ASR cache of m4ser-asr (default: none)")
    parser.add_argument("--folds", type=int, nargs="+", default=list(FOLDS), choices=FOLDS,
                        help="the test sessions whose fold folders are written")
    parser.add_argument("--validation", choices=VALIDATION_MODES, default=DEFAULT_VALIDATION,
                        help="train_sessions: hold out part of the training sessions; "
                             "test_fold: select on the test session (optimistic)")
    parser.add_argument("--valid-ratio", type=float, default=DEFAULT_VALID_RATIO,
                        help="share of the training sessions held out")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the validation split (as the YAML's)")
    parser.add_argument("--subset", action="store_true",
                        help="do not assert the per-session counts of the full release (5531)")
    parser.add_argument("--missing-hypothesis", choices=prep.MISSING_HYPOTHESIS_POLICIES,
                        default="error", help="what to do for utterances without hypothesis")
    return parser


def expected_utterances_of(args):
    """``expected_utterances`` for parsed command-line ``args``: None with ``--subset``."""
    return None if args.subset else DEFAULT_EXPECTED_UTTERANCES


def main(argv=None):
    """Command line: ``python recipes/IEMOCAP/iemocap_prepare.py DATA SAVE --hypotheses H``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        summary = prepare_iemocap(
            args.data_folder, args.save_folder, hypotheses=args.hypotheses, folds=args.folds,
            validation=args.validation, valid_ratio=args.valid_ratio, seed=args.seed,
            expected_utterances=expected_utterances_of(args),
            missing_hypothesis=args.missing_hypothesis,
        )
    except IemocapPrepError as error:
        sys.exit(f"error: {error}")
    print(json.dumps({k: v for k, v in summary.items() if k != "options"}, indent=2))


# ------------------------------------------------------------------------------ the corpus of a run
class IemocapSettings(BaseModel):
    """The keys of ``hparams/iemocap.yaml``, checked before any work (one-line errors)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    fold: Annotated[StrictInt, Field(ge=FOLDS[0], le=FOLDS[-1], json_schema_extra=_BOOK)]
    validation: Literal[VALIDATION_MODES]
    valid_ratio: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    expected_utterances: Optional[Union[PositiveInt, Dict[Literal[FOLDS], PositiveInt]]]
    num_emotions: Literal[NUM_EMOTIONS]
    folds: Annotated[List[Literal[FOLDS]], Field(min_length=1, json_schema_extra=_BOOK)] = list(FOLDS)
    launcher: Annotated[Optional[StrictStr], Field(json_schema_extra=_BOOK)] = None
    asr_model: Annotated[Optional[StrictStr], Field(json_schema_extra=_BOOK)] = None


def prepare_kwargs(values):
    """The :func:`prepare_iemocap` arguments of a run."""
    return {
        **prepare_folders(values),
        "validation": values["validation"],
        "valid_ratio": values["valid_ratio"],
        "seed": values["seed"],
        "expected_utterances": values["expected_utterances"],
    }


#: IEMOCAP as a run sees it (``recipes/IEMOCAP/train.py``).
IEMOCAP = Corpus("IEMOCAP", HPARAMS / "iemocap.yaml", IemocapSettings, prepare_iemocap,
                 prepare_kwargs, paper_asr_model="openai/whisper-medium.en")


if __name__ == "__main__":
    main()
