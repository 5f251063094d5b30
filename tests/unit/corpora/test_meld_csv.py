"""MELD CSV encodings (m4ser_lobes.corpora.meld_csv): each file read in its encoding, or refused.

Regression: one stray cp1252 byte in a UTF-8 CSV used to send the whole file through cp1252 with
replacement, turning every ``I’m`` of it into ``Iâ€™m`` with a single INFO line.
"""

import csv
import io

import pytest

from m4ser_lobes.corpora import meld
from m4ser_lobes.corpora.meld_csv import CSV_COLUMNS, MeldPrepError, decode_csv_bytes, read_csv

# 69 rows, 51 of them with a curly apostrophe (the proportions of the reported file).
TEXTS = [f"I\u2019m line {i}, don\u2019t go" if i < 51 else f"plain line {i}" for i in range(69)]


def _csv_text(texts):
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, text in enumerate(texts):
        writer.writerow([i + 1, text, "Joey", "joy", "positive", 0, i, 1, 1,
                         "00:00:01,000", "00:00:02,500"])
    return out.getvalue()


def _with_stray_bytes(path, rows):
    """Write the UTF-8 CSV of TEXTS to ``path`` with the first apostrophe of each of ``rows``
    as the cp1252 byte 0x92; returns the byte offsets."""
    data = _csv_text(TEXTS).encode("utf-8")
    offsets = []
    for row in rows:
        offset = data.index(f"I\u2019m line {row},".encode("utf-8")) + 1
        data = data[:offset] + b"\x92" + data[offset + 3:]
        offsets.append(offset)
    path.write_bytes(data)
    return offsets


def _one_line_error(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_utf8_file_with_one_stray_cp1252_byte_is_an_error_naming_line_and_byte(tmp_path):
    # Row 8 (file line 9): its first apostrophe written as the cp1252 byte 0x92.
    path = tmp_path / "train_sent_emo.csv"
    offset, = _with_stray_bytes(path, [7])
    with pytest.raises(MeldPrepError) as excinfo:
        read_csv(path, "train")
    message = _one_line_error(excinfo)
    assert message.startswith(f"{path}:9: byte 0x92 at offset {offset} is not UTF-8")
    assert "'\u2019' in cp1252" in message and "101 UTF-8 multi-byte" in message
    assert "\u00e2\u20ac" not in message  # no mojibake anywhere


def test_several_bad_bytes_are_all_counted(tmp_path):
    path = tmp_path / "dev_sent_emo.csv"
    _with_stray_bytes(path, [3, 20])
    with pytest.raises(MeldPrepError) as excinfo:
        read_csv(path, "dev")
    message = _one_line_error(excinfo)
    assert message.startswith(f"{path}:5: 2 bytes, 0x92 at offset ")
    assert "(line 5)" in message and "(line 22)" in message


def test_genuine_cp1252_file_is_decoded_correctly(tmp_path):
    texts = ["I\u2019m fine\u2026 really \u2013 \u201cyes\u201d", "caf\u00e9 na\u00efve",
             "it\u2019s \u20ac5"]
    path = tmp_path / "dev_sent_emo.csv"
    path.write_bytes(_csv_text(texts).encode("cp1252"))
    rows, encoding = read_csv(path, "dev")
    assert encoding == "cp1252"
    assert [r.transcript for r in rows] == [
        "I'm fine... really - \"yes\"", "caf\u00e9 na\u00efve", "it's \u20ac5"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_file_is_utf8(tmp_path, encoding):
    path = tmp_path / "test_sent_emo.csv"
    path.write_bytes(_csv_text(TEXTS).encode(encoding))
    rows, found = read_csv(path, "test")
    assert found == "utf-8"
    assert rows[0].transcript == "I'm line 0, don't go" and len(rows) == 69


def test_file_with_a_byte_undefined_in_cp1252_is_an_error(tmp_path):
    data = _csv_text(["it\u2019s", "fine"]).encode("cp1252")
    offset = data.index(b"fine")
    data = data[:offset] + b"\x81" + data[offset:]
    path = tmp_path / "dev_sent_emo.csv"
    path.write_bytes(data)
    with pytest.raises(MeldPrepError) as excinfo:
        read_csv(path, "dev")
    message = _one_line_error(excinfo)
    assert message.startswith(f"{path}:3: neither UTF-8 nor cp1252: byte 0x81 at offset "
                              f"{offset} is undefined in cp1252")


def test_ascii_and_empty_files_are_utf8():
    assert decode_csv_bytes(b"a,b\n") == ("a,b\n", "utf-8")
    assert decode_csv_bytes(b"") == ("", "utf-8")


def test_the_prep_stops_on_a_bad_csv_before_decoding(tmp_path):
    root = tmp_path / "MELD.Raw"
    for split in meld.SPLITS.values():
        (root / split.folder).mkdir(parents=True)
        (root / split.csv).write_bytes(_csv_text(TEXTS[:3]).encode("utf-8"))
    data = _csv_text(TEXTS[:3]).encode("utf-8").replace("\u2019".encode(), b"\x92", 1)
    (root / "test_sent_emo.csv").write_bytes(data)
    with pytest.raises(MeldPrepError, match=r"test_sent_emo.csv:2: byte 0x92 at offset \d+ is "
                                            r"not UTF-8"):
        meld.prepare_meld(root, tmp_path / "prep", expected_counts=None, num_workers=1)
    assert not (tmp_path / "prep").exists()
