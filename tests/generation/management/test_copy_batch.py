"""manage.py copy_batch: one JSON object per product row, bad rows reported by line, nothing half-written."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

HEADER = "name,brand,category,colour,material,price,sizes,features,audience,warranty\n"


def test_batch_writes_checked_copy_per_row(tmp_path):
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_text(
        HEADER
        + "Metro Sling,Urbano,Sling bag,Black,Recycled nylon,45 EUR,,adjustable strap; front zip pocket,commuters,\n"
        + "Pulse Earbuds,Voltra,Earbuds,White,Plastic,99 EUR,,touch controls,runners,1 year\n"
    )
    stdout = io.StringIO()
    call_command("copy_batch", "--in", str(source), "--out", str(out), "--length", "short", "--segment", "students",
                 "--max-regenerations", "0",
                 stdout=stdout)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["line"] for line in lines] == [2, 3] and "Wrote copy for 2 products" in stdout.getvalue()
    assert "sizes" not in lines[0]["attributes"] and lines[1]["attributes"]["warranty"] == "1 year"
    for line in lines:
        (candidate,) = line["candidates"]
        assert candidate["segment"] == "students"
        assert candidate["title"] and candidate["description"] and candidate["bullets"]
        assert candidate["checks"]["coverage"] == 1.0 and candidate["checks"]["unsupported"] == []
    assert "Warranty: 1 year" in lines[1]["candidates"][0]["bullets"]


def test_bad_rows_are_reported_by_line_and_nothing_is_written(tmp_path, settings):
    settings.GENAI_COPY_MAX_VALUE_CHARS = 50
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_text(
        HEADER
        + "Good,Urbano,Bag,Black,Nylon,45,,,,\n"
        + ",,,,,,,,,\n"
        + "Long," + "x" * 60 + ",Bag,,,,,,,\n"
        + "Extra,Urbano,Bag,,,,,,,,surplus\n"
    )
    with pytest.raises(CommandError) as raised:
        call_command("copy_batch", "--in", str(source), "--out", str(out), stdout=io.StringIO())
    message = str(raised.value)
    assert "3 bad row(s)" in message
    assert "line 3: attributes" in message and "line 4: attributes: brand: at most 50" in message and "line 5: row" in message
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError):
        call_command("copy_batch", "--in", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.jsonl"))
