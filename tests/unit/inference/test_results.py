"""The results file of ``m4ser-classify`` (``m4ser_lobes.inference.results``), without a model.

The command killed and rerun for real: ``tests/integration/test_classify.py``.
"""

import json

import pytest

from m4ser_lobes.inference.classify import Item
from m4ser_lobes.inference.results import OutputError, ResultsFile, csv_header

CLASSES = ["neu", "ang"]


def record(utt_id, status="ok"):
    if status != "ok":
        return {"id": utt_id, "path": f"{utt_id}.wav", "status": status, "error": "file not found"}
    return {"id": utt_id, "path": f"{utt_id}.wav", "status": "ok", "label": "neu", "score": 0.75,
            "probabilities": {"neu": 0.75, "ang": 0.25}, "transcript": "oh, no\nreally",
            "transcript_source": "given"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_rows_are_on_disk_as_soon_as_they_are_added_and_a_rerun_keeps_them(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    results = ResultsFile(out)
    results.start(CLASSES, correct=False, model="m")
    for utt_id, status in (("a", "ok"), ("b", "skipped"), ("c", "ok")):
        results.add(record(utt_id, status))
        assert out.read_text().count(f"{utt_id}.wav") == 1, "written before the next input"
    results.close()
    written = out.read_bytes()
    again = ResultsFile(out)  # the same command, again
    items = [Item(u, f"{u}.wav") for u in "abcd"]
    assert [i.id for i in again.pending(items)] == ["b", "d"], "skipped ones are retried"
    again.start(CLASSES, correct=False, model="m")
    again.close()
    assert b"b.wav" not in out.read_bytes() and out.read_bytes() != written
    assert [i.id for i in ResultsFile(out).pending(items)] == ["b", "d"]


def test_a_csv_row_cut_short_by_a_crash_is_dropped(tmp_path):
    out = tmp_path / "out.csv"
    results = ResultsFile(out)
    results.start(CLASSES, correct=False)
    results.add(record("a"))
    results.close()
    with open(out, "a", encoding="utf-8") as fout:
        fout.write("b,b.wav,ok,ne")  # the power went out mid-row
    again = ResultsFile(out)
    assert [i.id for i in again.pending([Item("a", "a.wav"), Item("b", "b.wav")])] == ["b"]
    again.start(CLASSES, correct=False)
    again.close()
    assert out.read_text().endswith("\n") and "b.wav" not in out.read_text()


def test_a_json_output_is_always_a_whole_document_and_rewritten_less_often_as_it_grows(tmp_path):
    out = tmp_path / "out.json"
    results = ResultsFile(out)
    results.start(CLASSES, correct=False, model="m")
    saved = []
    for i in range(400):
        results.add(record(f"u{i}"))
        saved.append(len(json.loads(out.read_text())["results"]))
    assert saved[:20] == list(range(1, 21)), "after every input at first"
    assert len(set(saved)) < 100, "then whenever 5 % more are done: O(log n) rewrites"
    assert all(done - on_disk <= max(1, done // 20) for done, on_disk in enumerate(saved, 1))
    results.close()
    assert len(json.loads(out.read_text())["results"]) == 400


@pytest.mark.parametrize(
    "content, words",
    [
        ("not,a,results,file\n1,2,3,4\n", "not id,path,status"),
        ("id,path,status\na,a.wav\n", None),  # a row cut short is dropped, not an error
        ("id,path,status\na,a.wav,ok,1\nb,b.wav,ok\n", "header columns"),
    ],
)
def test_a_csv_that_is_not_a_results_file_is_refused(tmp_path, content, words):
    out = tmp_path / "out.csv"
    out.write_text(content)
    if words is None:
        assert ResultsFile(out).kept == []
        return
    with pytest.raises(OutputError, match=words):
        ResultsFile(out)


def test_columns_classes_and_model_must_be_this_commands(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text(",".join(csv_header(["neu", "sad"], False)) + "\n")
    with pytest.raises(OutputError, match="another model or --correct"):
        ResultsFile(out).start(CLASSES, correct=False)
    out = tmp_path / "out.json"
    out.write_text(json.dumps({"model": "m1", "classes": CLASSES, "results": [record("a")]}))
    with pytest.raises(OutputError, match="not m2"):
        ResultsFile(out).start(CLASSES, correct=False, model="m2")
    with pytest.raises(OutputError, match="without --correct"):
        ResultsFile(out).start(CLASSES, correct=True, model="m1")
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(OutputError, match="line 2 is not JSON"):
        ResultsFile(tmp_path / "bad.jsonl")
