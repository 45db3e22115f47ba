"""The shared CSV/TSV reader (tables.py) and every template's table loader built on it.

One tricky but valid file (a UTF-8 BOM, CRLF line ends, a quoted field holding a
newline and a comma, a trailing empty line) must read the same through the shared
reader and through nlp's, fraud's and driving's loaders; broken files get one line
naming the file, the line and, for sizes, the ``limits.*`` knob.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import runtime
import template_modules

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

tables = runtime.load("tables")
limits = runtime.load("limits")
errors = runtime.load("errors")

MULTILINE = "first line\r\nsecond, line"  # what the quoted cell must come back as


def tricky(header: list[str], rows: list[list[str]], delimiter: str = ",") -> bytes:
    """BOM + CRLF + quoted newline/comma + a trailing empty line, written by hand."""
    def cell(value: str) -> str:
        return f'"{value}"' if any(c in value for c in f'"\r\n{delimiter}') else value

    lines = [delimiter.join(cell(v) for v in row) for row in [header, *rows]]
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n"


@pytest.fixture(autouse=True)
def default_limits() -> Iterator[None]:
    limits.configure({})
    yield
    limits.configure({})


def read_all(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    with tables.open_table(path) as table:
        return table.header, list(table.rows())


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_shared_reader_reads_what_the_csv_module_reads(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / ("t.csv" if delimiter == "," else "t.tsv")
    path.write_bytes(tricky(["text", "label"], [[MULTILINE, "pos"], ["plain", "neg"]],
                            delimiter))
    header, rows = read_all(path)
    assert header == ["text", "label"]  # no BOM glued to the first name
    assert rows == [(2, [MULTILINE, "pos"]), (4, ["plain", "neg"])]  # line where a row starts


def test_ragged_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('text,label\n"a\nb",pos\nc,neg,extra\n', encoding="utf-8")
    with pytest.raises(errors.DataError, match=r"t\.csv:4: 3 fields, the header has 2"):
        read_all(path)


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("body,label\nx,y\n", encoding="utf-8")
    with tables.open_table(path) as table, pytest.raises(
            errors.DataError, match=r"t\.csv: no column 'text' \(columns: body, label\)"):
        table.require(["text", "label"])


def test_field_over_the_limit_names_file_line_and_knob(tmp_path: Path) -> None:
    limits.configure({"limits": {"csv_field_mb": 0.001}})  # 1000 characters
    path = tmp_path / "t.csv"
    # 1200 characters in one quoted field, split over lines of 600 (no line is too long)
    path.write_text('text,label\nok,a\n"' + "x" * 600 + "\n" + "x" * 600 + '",b\n',
                    encoding="utf-8")
    with pytest.raises(errors.DataError) as caught:
        read_all(path)
    message = str(caught.value)
    assert "t.csv:3" in message and "limits.csv_field_mb" in message and "\n" not in message


def test_text_lines_strip_bom_and_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n\nthree")
    assert list(tables.text_lines(path)) == [(1, "one"), (2, "two"), (3, ""), (4, "three")]


def test_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"text,label\n\xff\xfe,a\n")
    with pytest.raises(errors.DataError, match=r"t\.csv is not UTF-8 text"):
        read_all(path)


def test_100_mb_line_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """A 100 MB one-line CSV: one line naming the file and the knob, and the reader never
    holds the whole line (peak memory of a subprocess that only reads it)."""
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        for _ in range(100):
            handle.write("x" * 1_000_000)
        handle.write(",a\n")
    script = (
        "import resource, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import runtime\n"
        "tables = runtime.load('tables')\n"
        "errors = runtime.load('errors')\n"
        "try:\n"
        f"    with tables.open_table(__import__('pathlib').Path({str(path)!r})) as table:\n"
        "        list(table.rows())\n"
        "except errors.DataError as err:\n"
        "    print(err)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a large
        # pytest process would report the parent's peak.
        "status = open('/proc/self/status').read()\n"
        "print(int(status.split('VmHWM:')[1].split()[0]) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    message, peak_mb = result.stdout.strip().splitlines()
    assert "huge.csv:2" in message and "limits.csv_field_mb = 16" in message
    assert int(peak_mb) < 120, f"peak {peak_mb} MB reading a 100 MB line"


# ------------------------------------------------------------------ every template's loader


def test_nlp_reads_the_tricky_csv_and_tsv(tmp_path: Path) -> None:
    data = template_modules.load("nlp", "text_io")
    rows = [[MULTILINE, "pos"], ["plain", "neg"]]
    for name, delimiter in (("train.csv", ","), ("train.tsv", "\t")):
        path = tmp_path / name
        path.write_bytes(tricky(["text", "label"], rows, delimiter))
        texts, labels = data.read_texts(path, "text", "label")
        assert texts == [MULTILINE, "plain"] and labels == ["pos", "neg"]


def test_nlp_long_cell_or_json_line_is_one_line(tmp_path: Path) -> None:
    data = template_modules.load("nlp", "text_io")
    nlp_limits = template_modules.load("nlp", "limits")
    nlp_limits.configure({"limits": {"csv_field_mb": 0.01}})  # 10,000 characters
    try:
        for name, body in (("train.csv", 'text,label\n"' + "x" * 20_000 + '",pos\n'),
                           ("train.jsonl", '{"text": "' + "x" * 20_000 + '", "label": "p"}\n')):
            path = tmp_path / name
            path.write_text(body, encoding="utf-8")
            with pytest.raises(data.DataError, match=rf"{name}:2?.*limits\.csv_field_mb"):
                data.read_texts(path, "text", "label")
    finally:
        nlp_limits.configure({})


def test_fraud_reads_the_tricky_csv(tmp_path: Path) -> None:
    data = template_modules.load("fraud", "data")
    path = tmp_path / "t.csv"
    path.write_bytes(tricky(["note", "amount", "is_fraud"],
                            [[MULTILINE, "1.5", "0"], ["plain", "2", "1"]]))
    columns = data.read_table(path)
    assert list(columns["note"]) == [MULTILINE, "plain"]
    assert list(columns["is_fraud"]) == ["0", "1"]


def test_driving_reads_the_tricky_labels_csv(tmp_path: Path) -> None:
    data = template_modules.load("driving", "data")
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "images" / name).write_bytes(b"")
    (tmp_path / "labels.csv").write_bytes(tricky(
        ["filename", "steering", "note"], [["a.png", "0.25", MULTILINE], ["b.png", "-0.5", "x"]]))
    files, values = data._read_labels(tmp_path, ["steering"], "error")
    assert [f.name for f in files] == ["a.png", "b.png"]
    assert values[:, 0].tolist() == [0.25, -0.5]


def test_driving_ragged_labels_row_names_its_line(tmp_path: Path) -> None:
    data = template_modules.load("driving", "data")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"")
    (tmp_path / "labels.csv").write_text('filename,steering\n"a.png",0.1\n"a.png",0.2,9\n',
                                         encoding="utf-8")
    with pytest.raises(data.DataError, match=r"labels\.csv line 3 \(a\.png\): 3 fields"):
        data._read_labels(tmp_path, ["steering"], "error")
    files, _ = data._read_labels(tmp_path, ["steering"], "skip")
    assert len(files) == 1


def test_driving_predict_reads_ground_truth_from_the_tricky_csv(tmp_path: Path) -> None:
    predict = template_modules.load("driving", "predict")
    (tmp_path / "images").mkdir()
    frame = tmp_path / "images" / "a.png"
    frame.write_bytes(b"")
    (tmp_path / "labels.csv").write_bytes(tricky(["filename", "steering", "note"],
                                                 [["a.png", "0.75", MULTILINE]]))
    assert predict._known_steering([frame])[frame.resolve()] == 0.75


# ------------------------------------------------------------------ fraud: data.dir vs data.path


def test_fraud_data_dir_is_honoured_and_data_path_is_explicit(tmp_path: Path) -> None:
    """The generated config trains on the only table in data.dir unless data.path names one."""
    from project_runner import generate

    project = generate(tmp_path, "precedence", "fraud", sample_data=False)
    config = template_modules.load("fraud", "config")
    data = template_modules.load("fraud", "data")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "t.csv").write_text("amount,is_fraud\n1,0\n", encoding="utf-8")
    (mine / "other.csv").write_text("amount,is_fraud\n1,0\n", encoding="utf-8")

    def table(*overrides: str) -> Path:
        return data.table_path(config.load_config(project / "config.toml", list(overrides)))

    with pytest.raises(data.DataError, match="must hold exactly one"):  # two tables: ask
        table(f"data.dir={mine}")
    (mine / "other.csv").unlink()
    assert table(f"data.dir={mine}") == mine / "t.csv"  # used to be ignored for data.path
    assert table(f"data.dir={mine}", 'data.path="t.csv"') == mine / "t.csv"  # name in dir
    assert table(f'data.path="{mine / "t.csv"}"') == mine / "t.csv"
    with pytest.raises(data.DataError, match=r"data\.path = 'nope\.csv': no such file"):
        table(f"data.dir={mine}", 'data.path="nope.csv"')
