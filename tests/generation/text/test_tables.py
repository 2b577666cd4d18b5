"""Reading CSV, one way for every importer, training and batch command."""

import pytest

from generation.text.tables import CsvError, csv_read


def test_rows_keep_their_line_numbers_and_a_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('\ufefftext,label\n"two\nlines",positive\n\n,\nlast,negative\n', encoding="utf-8")
    table = csv_read(path, columns=["text", "label"])
    assert table.columns == ["text", "label"]
    assert table.column("text") == ["two\nlines", "", "last"]  # a blank line is skipped, empty cells are a row
    assert table.lines == [3, 5, 6]


def test_a_missing_column_is_named_with_the_columns_there_are():
    with pytest.raises(CsvError, match=r"no column 'label' \(columns: text, score\)"):
        csv_read(content="text,score\nhi,1\n", columns=["text", "label"])


def test_the_row_cap_stops_or_refuses():
    content = "text\n" + "".join(f"row {i}\n" for i in range(5))
    stopped = csv_read(content=content, max_rows=3)
    assert len(stopped.rows) == 3 and stopped.truncated
    with pytest.raises(CsvError, match="more than 3 rows"):
        csv_read(content=content, max_rows=3, over_max="error")


def test_unreadable_files_and_headerless_text_are_csv_errors(tmp_path):
    with pytest.raises(CsvError, match="cannot read"):
        csv_read(tmp_path / "absent.csv")
    with pytest.raises(CsvError, match="no header row"):
        csv_read(content="\n\n")
    (tmp_path / "latin1.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CsvError, match="not UTF-8"):
        csv_read(tmp_path / "latin1.csv")


def test_cells_past_the_header_are_kept_apart():
    (row,) = csv_read(content="a,b\n1,2,3,4\n").rows
    assert row == {"a": "1", "b": "2", None: ["3", "4"]}
