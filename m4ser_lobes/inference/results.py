"""The results file of ``m4ser-classify``: checked first, written as it goes, resumed by a rerun.

Formats (``--format``, else the suffix of ``--output``):

- ``csv`` (default): a header, then one row per input, appended (one ``write``, then ``fsync``)
  as soon as the input is classified;
- ``jsonl`` (``.jsonl``): JSON Lines, one record per input, appended the same way;
- ``json`` (``.json``): one document ``{"model", "classes", "results": [records]}``, rewritten
  atomically as it grows (after every input at first, then whenever 5 % more are done or 30 s
  have passed, and at the end), so it is always a complete JSON document.

A killed run therefore loses at most the input being classified (``csv``, ``jsonl``) or the last
few (``json``). Running the same command again resumes: the ``ok`` rows already in the file are
kept as they are and their inputs are not classified again; ``skipped`` rows are dropped and
their inputs tried again (a file fixed in the meantime is then classified); a row cut short by a
crash is dropped. Every input thus appears exactly once. The file must have been written by the
same command: another model's classes, another ``--correct``, or an id of the file that now names
another path is refused before any input is classified.

Before any model loads, :class:`ResultsFile` refuses (one line, :class:`OutputError`) an output
that is a folder, lies under a regular file, sits in a folder that cannot be written, or exists
but is not such a file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "json")


class OutputError(ValueError):
    """``--output`` cannot be written, or holds what another command wrote."""


def output_format(path, fmt=None):
    """``fmt``, else the format the suffix of ``path`` names (``csv`` by default).

    Example
    -------
    >>> output_format("a.JSON"), output_format("a.jsonl"), output_format("a.txt", "json")
    ('json', 'jsonl', 'json')
    """
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".jsonl": "jsonl"}.get(suffix, "csv")


def check_output_path(path):
    """Refuse an output path that cannot be written (see the module docstring); one line.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> check_output_path(tmp / "new" / "out.csv")
    >>> check_output_path(tmp)
    Traceback (most recent call last):
    ...
    m4ser_lobes.inference.results.OutputError: --output ...: a folder; give a file in it, such as .../predictions.csv
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"--output {path}: a folder; give a file in it, such as {path / 'predictions.csv'}"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(
            f"--output {path}: {folder} is a file, not a folder; give a path in a folder"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".m4ser-classify-probe-")
        os.close(fd)
        os.unlink(probe)
        if path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as err:
        raise OutputError(
            f"--output {path}: cannot write {path if path.exists() else 'in ' + str(folder)} "
            f"({type(err).__name__}: {err.strerror or err}); give a writable --output"
        ) from None


def csv_header(classes, corrected):
    """The CSV columns: id, path, status, label, score, ``p_<class>``, transcript, its source,
    ``corrected`` (with ``--correct``) and error."""
    header = ["id", "path", "status", "label", "score"] + [f"p_{c}" for c in classes]
    return header + ["transcript", "transcript_source"] + (["corrected"] if corrected else []) + [
        "error"
    ]


def csv_row(record, classes, corrected):
    """One record as CSV cells (6 decimals)."""
    probs = record.get("probabilities", {})
    row = [record["id"], record["path"], record["status"], record.get("label", "")]
    row.append(f"{record['score']:.6f}" if "score" in record else "")
    row += [f"{probs[c]:.6f}" if c in probs else "" for c in classes]
    row += [record.get("transcript") or "", record.get("transcript_source", "")]
    return row + ([record.get("corrected") or ""] if corrected else []) + [record.get("error", "")]


def _csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class ResultsFile:
    """``--output`` of ``m4ser-classify`` (module docstring): check, resume, append, close.

    Arguments
    ---------
    path : str or Path
        The results file.
    fmt : str, optional
        ``csv``, ``jsonl`` or ``json``; default: by suffix (:func:`output_format`).

    Raises
    ------
    OutputError
        The path cannot be written, or the file there is not an ``m4ser-classify`` output.
    """

    def __init__(self, path, fmt=None):
        self.path = Path(path)
        self.format = output_format(path, fmt)
        check_output_path(self.path)
        self.header = None  # CSV header of the existing file
        self.document = {}  # JSON document of the existing file, without its results
        self.kept = []  # (id, path, payload) of the ok rows of an earlier run: payload as read
        self.rewrite = False  # the existing file loses rows (skipped, cut short) when started
        if self.path.exists():
            self._read()
        self._fd = None
        self._records = []  # json: every record of the document
        self._unsaved = 0
        self._saved_at = time.monotonic()

    # ------------------------------------------------------------------ resuming
    def _bad(self, what):
        return OutputError(
            f"--output {self.path}: {what}; it is not an m4ser-classify {self.format} output "
            "(give another --output, or delete it)"
        )

    def _read(self):
        text = self.path.read_bytes().decode("utf-8", errors="replace")  # newlines as written
        if text and not text.endswith("\n") and self.format != "json":
            text = text[: text.rfind("\n") + 1]  # a row cut short by a crash
            self.rewrite = True
        if self.format == "json":
            try:
                document = json.loads(text) if text.strip() else {"results": []}
            except ValueError as err:
                raise self._bad(f"not JSON ({err})") from None
            if not isinstance(document, dict) or not isinstance(document.get("results"), list):
                raise self._bad('no "results" list')
            records = document.pop("results")
            self.document = document
        elif self.format == "jsonl":
            records = []
            for number, line in enumerate(text.splitlines(), 1):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise self._bad(f"line {number} is not JSON") from None
        else:
            rows = list(csv.reader(io.StringIO(text)))
            if not rows:
                return
            self.header, rows = rows[0], rows[1:]
            if self.header[:3] != ["id", "path", "status"]:
                raise self._bad(f"its header starts {self.header[:3]}, not id,path,status")
            if rows and len(rows[-1]) != len(self.header):
                rows, self.rewrite = rows[:-1], True
            if any(len(row) != len(self.header) for row in rows):
                raise self._bad(f"a row does not have the {len(self.header)} header columns")
            records = [dict(zip(self.header, row), _row=row) for row in rows]
        for record in records:
            if not isinstance(record, dict) or not {"id", "path", "status"} <= set(record):
                raise self._bad("a record lacks id, path or status")
            if record["status"] == "ok":
                payload = record.pop("_row", record)
                self.kept.append((str(record["id"]), str(record["path"]), payload))
            else:
                self.rewrite = True

    def pending(self, items):
        """The items whose id has no ``ok`` row yet (one with another path is refused)."""
        done = {utt_id: path for utt_id, path, _ in self.kept}
        for item in items:
            if item.id in done and done[item.id] != item.path:
                raise OutputError(
                    f"--output {self.path} already holds id {item.id} for {done[item.id]}, not "
                    f"{item.path}: it was written by another command; give another --output"
                )
        return [item for item in items if item.id not in done]

    def start(self, classes, correct, model=None):
        """Check the existing file against this run and (re)write what is kept; then appends go.

        Arguments
        ---------
        classes : list of str
            The model's classes (CSV columns, JSON ``classes``).
        correct : bool
            ``--correct`` (a ``corrected`` column / key).
        model : str, optional
            ``--model`` (recorded in the JSON document).
        """
        self.classes, self.correct = list(classes), bool(correct)
        again = "rerun the same command, or give another --output"
        if self.format == "csv":
            want = csv_header(classes, correct)
            if self.header is not None and self.header != want:
                raise OutputError(
                    f"--output {self.path} has the columns {','.join(self.header)}, this run "
                    f"writes {','.join(want)} (another model or --correct); {again}"
                )
            if self.header is None or self.rewrite:
                rows = [want] + [payload for _, _, payload in self.kept]
                atomic_write_text(self.path, _csv_text(rows))
        else:
            for _, _, record in self.kept:
                probabilities = record.get("probabilities")
                if not isinstance(probabilities, dict) or sorted(probabilities) != sorted(classes):
                    raise OutputError(
                        f"--output {self.path} holds results for the classes "
                        f"{sorted(probabilities or {})}, this model has {sorted(classes)}; {again}"
                    )
                if ("corrected" in record) != self.correct:
                    raise OutputError(
                        f"--output {self.path} was written {'without' if self.correct else 'with'}"
                        f" --correct; {again}"
                    )
            if self.format == "json":
                if self.document.get("model") not in (None, model):
                    raise OutputError(
                        f"--output {self.path} holds results of the model "
                        f"{self.document['model']}, not {model}; {again}"
                    )
                self.document = {"model": model, "classes": self.classes}
                self._records = [record for _, _, record in self.kept]
                self._save()
            elif self.rewrite or not self.path.exists():
                lines = [json.dumps(r, ensure_ascii=False) + "\n" for _, _, r in self.kept]
                atomic_write_text(self.path, "".join(lines))
        if self.format != "json":
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        if self.kept:
            logger.info("%s: kept %d results of an earlier run", self.path, len(self.kept))

    # ------------------------------------------------------------------ writing
    def _save(self):
        atomic_write_json(self.path, {**self.document, "results": self._records})
        self._unsaved, self._saved_at = 0, time.monotonic()

    def add(self, record):
        """Write one record (csv, jsonl: appended now; json: with the next rewrite)."""
        if self.format == "json":
            self._records.append(record)
            self._unsaved += 1
            if self._unsaved >= max(1, len(self._records) // 20) or (
                time.monotonic() - self._saved_at >= 30
            ):
                self._save()
            return
        if self.format == "csv":
            data = _csv_text([csv_row(record, self.classes, self.correct)])
        else:
            data = json.dumps(record, ensure_ascii=False) + "\n"
        view = memoryview(data.encode("utf-8"))
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def close(self):
        """Write what is pending and close the file."""
        if self.format == "json" and self._unsaved:
            self._save()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
