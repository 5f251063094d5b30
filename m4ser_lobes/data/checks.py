"""Checks of a run's data before training: every problem of every split, in one error.

A broken file or a wrong manifest otherwise surfaces hours into training (a NaN loss from one
NaN sample, a test label the classifier never saw) or as a bare ``IndexError`` (an empty
manifest). :func:`check_splits` reads the manifests of a run (the JSON schema of
``docs/CONTRACTS.md``) and checks, all at once:

* every manifest exists, is a JSON object of entries with ``wav`` and the label field, and is
  not empty;
* every audio file decodes with soundfile (as :func:`m4ser_lobes.data.audio.load_audio` reads it)
  into a non-empty signal without NaN or Inf samples;
* the labels of every other split (valid, test) are labels of ``train``: the classifier has no
  output for any other;
* no utterance id of ``train`` is also in another split (its results would reward memorisation).

Reading all the audio takes a while on a full corpus, so the outcome per file is cached in
``<cache_folder>/audio_checks.json``, keyed by the file's absolute path, size and modification
time: a rerun decodes only files that are new or changed. Problems found raise one
:class:`DataCheckError`: a summary line, then one line per problem naming the manifest or the
file and what to do.

Example
-------
>>> import json
>>> import soundfile as sf
>>> tmp = getfixture("tmp_path")
>>> sf.write(tmp / "a.wav", np.full(1600, 0.1, dtype="float32"), 16000)
>>> entry = {"wav": str(tmp / "a.wav"), "duration": 0.1, "emo": "neu"}
>>> for split in ("train", "test"):
...     _ = (tmp / f"{split}.json").write_text(json.dumps({f"{split}_1": entry}))
>>> manifests = {split: tmp / f"{split}.json" for split in ("train", "test")}
>>> summary = check_splits(manifests, tmp / "cache")
>>> summary["utterances"], summary["labels"], summary["audio"]
({'train': 1, 'test': 1}, ['neu'], {'files': 1, 'decoded': 1, 'cached': 0})
>>> check_splits(manifests, tmp / "cache")["audio"]  # the second time: from the cache
{'files': 1, 'decoded': 0, 'cached': 1}
>>> _ = (tmp / "test.json").write_text(json.dumps({"train_1": {**entry, "emo": "ang"}}))
>>> check_splits(manifests, tmp / "cache")
Traceback (most recent call last):
  ...
m4ser_lobes.data.checks.DataCheckError: 2 problems in the data of this run (1 unseen label, ...
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from m4ser_lobes.data.prep import short_list
from m4ser_lobes.utils.fileio import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["DataCheckError", "check_splits", "check_audio_file", "CACHE_FILE"]

CACHE_FILE = "audio_checks.json"
_BLOCK = 1 << 20  # frames read at a time: memory stays bounded on long files
_AUDIO_FIX = ("re-export it as 16 kHz mono wav (`ffmpeg -i IN -ac 1 -ar 16000 OUT.wav`) or "
              "remove the utterance from the manifest")


class DataCheckError(ValueError):
    """The data of a run has problems; ``problems`` lists them (also the message, one a line)."""

    def __init__(self, problems, kinds):
        self.problems = list(problems)
        counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in kinds.items())
        super().__init__(
            f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} in the data "
            f"of this run ({counts}); fix them before training:\n" + "\n".join(self.problems))


def check_audio_file(path):
    """None when ``path`` decodes with soundfile into a non-empty, finite signal; else the problem.

    Arguments
    ---------
    path : str or Path
        An existing file.

    Returns
    -------
    str or None

    Example
    -------
    >>> import soundfile as sf
    >>> path = getfixture("tmp_path") / "nan.wav"
    >>> sf.write(path, np.array([0.0, np.nan, 0.0], dtype="float32"), 16000, subtype="FLOAT")
    >>> check_audio_file(path)
    'NaN or Inf samples (the first at sample 1, 0.000 s)'
    """
    import soundfile as sf

    frames = 0
    try:
        with sf.SoundFile(os.fspath(path)) as audio:
            rate = audio.samplerate
            for block in audio.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True):
                finite = np.isfinite(block).all(axis=1)
                if not finite.all():
                    first = frames + int(np.argmin(finite))
                    return f"NaN or Inf samples (the first at sample {first}, {first / rate:.3f} s)"
                frames += len(block)
    except Exception as error:  # soundfile raises several types for undecodable input
        return f"not readable by soundfile ({type(error).__name__}: {error})".replace("\n", " ")
    return "the signal is empty" if frames == 0 else None


def check_splits(manifests, cache_folder, label_key="emo", train="train"):
    """Check the manifests of a run and their audio; raise one error listing every problem.

    Arguments
    ---------
    manifests : dict
        Split name -> manifest path (SpeechBrain JSON manifest keyed by utterance id,
        ``docs/CONTRACTS.md``); ``train`` is required.
    cache_folder : str or Path
        Where ``audio_checks.json`` (the outcome per audio file) is kept between runs.
    label_key : str
        The entry field holding the class label.
    train : str
        The split whose labels the others must use and whose ids no other may repeat.

    Returns
    -------
    dict
        ``utterances`` (split -> count), ``labels`` (of ``train``, sorted), ``audio`` (``files``
        checked, of them ``decoded`` now and ``cached`` from an earlier run), ``cache`` (path).

    Raises
    ------
    DataCheckError
        When any check fails: a summary line, then one line per problem.
    """
    problems, kinds = [], Counter()

    def problem(kind, text):
        problems.append(text)
        kinds[kind] += 1

    if train not in manifests:
        problem("missing manifest", f"no '{train}' manifest among the splits {sorted(manifests)}; "
                                    f"set {train}_annotation")
    entries = {}
    for split, path in manifests.items():
        entries[split] = _read_manifest(split, path, label_key, problem)

    # Audio, each file once (two utterances may share a file), from the cache when unchanged.
    cache_file = Path(cache_folder) / CACHE_FILE
    cache, fresh = _load_cache(cache_file), {}
    users, decoded = {}, 0
    for split, data in entries.items():
        for utt_id, entry in data.items():
            users.setdefault(os.path.abspath(os.fspath(entry["wav"])), (split, utt_id))
    for wav, (split, utt_id) in users.items():
        try:
            stat = os.stat(wav)
        except OSError:
            problem("broken audio file", f"{wav}: file not found ({split} {utt_id}, "
                             f"{manifests[split]}); fix the path or prepare the data again")
            continue
        key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        known = cache.get(wav)
        if known is not None and {k: known.get(k) for k in key} == key:
            outcome = known["problem"]
        else:
            outcome, decoded = check_audio_file(wav), decoded + 1
        fresh[wav] = {**key, "problem": outcome}
        if outcome is not None:
            problem("broken audio file", f"{wav}: {outcome} ({split} {utt_id}); {_AUDIO_FIX}")
    if fresh != {k: cache.get(k) for k in fresh}:
        atomic_write_json(cache_file, {**cache, **fresh}, indent=None)

    # Labels and ids against train.
    train_data = entries.get(train, {})
    labels = {str(e[label_key]) for e in train_data.values()}
    for split, data in entries.items():
        if split == train or not train_data:
            continue
        unseen = {}
        for utt_id, entry in data.items():
            if str(entry[label_key]) not in labels:
                unseen.setdefault(str(entry[label_key]), []).append(utt_id)
        for label, ids in sorted(unseen.items()):
            problem("unseen label", f"{manifests[split]}: label {label!r} of {len(ids)} "
                                    f"utterance(s) ({short_list(ids)}) is not a {train} label "
                                    f"({', '.join(sorted(labels))}); the classifier has no "
                                    f"output for it: drop those utterances or map the label")
        shared = sorted(set(data) & set(train_data))
        if shared:
            problem("shared id", f"{manifests[split]}: {len(shared)} utterance id(s) also in "
                                 f"{train} ({manifests[train]}): {short_list(shared)}; the {split} "
                                 f"results would reward memorisation: split the data again")
    if problems:
        raise DataCheckError(problems, dict(kinds))
    summary = {
        "utterances": {split: len(data) for split, data in entries.items()},
        "labels": sorted(labels),
        "audio": {"files": len(users), "decoded": decoded, "cached": len(users) - decoded},
        "cache": str(cache_file),
    }
    logger.info("data checks passed: %s utterances, %d audio files (%d decoded, %d cached)",
                summary["utterances"], len(users), decoded, len(users) - decoded)
    return summary


def _read_manifest(split, path, label_key, problem):
    """The usable entries of one manifest; its problems go to ``problem(kind, text)``."""
    key = f"{split}_annotation"
    try:
        with open(path, encoding="utf-8") as fin:
            data = json.load(fin)
    except FileNotFoundError:
        problem("missing manifest", f"{path}: {split} manifest not found; prepare the data or "
                                    f"fix {key}")
        return {}
    except (OSError, ValueError) as error:
        problem("bad manifest", f"{path}: not a JSON manifest ({error}); prepare the data again")
        return {}
    if not isinstance(data, dict):
        problem("bad manifest", f"{path}: a JSON {type(data).__name__}, not an object keyed by "
                                "utterance id; prepare the data again")
        return {}
    if not data:
        problem("empty manifest", f"{path}: the {split} manifest holds no utterances; prepare "
                                  f"the data again or point {key} at a manifest with utterances")
    usable = {}
    for utt_id, entry in data.items():
        entry = entry if isinstance(entry, dict) else {}
        missing = [field for field, ok in (("wav", isinstance(entry.get("wav"), str)),
                                           (label_key, entry.get(label_key) is not None)) if not ok]
        if missing:
            problem("bad manifest", f"{path}: utterance {utt_id} has no {' / '.join(missing)} "
                                    "(docs/CONTRACTS.md); prepare the data again")
        else:
            usable[utt_id] = entry
    return usable


def _load_cache(path):
    """The cached outcome per audio file, or {} when there is none (or it is unreadable)."""
    try:
        with open(path, encoding="utf-8") as fin:
            cache = json.load(fin)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("%s: unreadable audio-check cache (%s); checking every file again",
                       path, error)
        return {}
    return cache if isinstance(cache, dict) else {}
