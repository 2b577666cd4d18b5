"""manage.py replies_batch: one JSON object per message, through the reply service in-process."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.knowledge_fixtures import csv_text

pytestmark = pytest.mark.django_db


def test_batch_writes_one_reply_per_row(load_kb, tmp_path):
    load_kb("conversations")
    messages = [
        {"instruction": "where is my package ORD-99231?", "response": "-"},
        {"instruction": "I want my money back for a broken item", "response": "-"},
        {"instruction": "how do I reset my password", "response": "-"},
    ]
    source, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_text(csv_text(messages))
    stdout = io.StringIO()
    call_command("replies_batch", "--in", str(source), "--out", str(out), "--limit", "2", "--max-new-tokens", "16", stdout=stdout)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and "Wrote 2 replies" in stdout.getvalue()
    for line in lines:
        assert {"message", "reply", "sources", "intent", "finish_reason"} <= set(line)
        assert line["reply"] and line["sources"] and all({"ref", "score", "snippet"} <= set(s) for s in line["sources"])
    assert lines[0]["message"] == "where is my package [ORDER_ID]?"
    assert lines[0]["intent"] == "track_order"


def test_batch_names_a_missing_column(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text\nhello\n")
    with pytest.raises(CommandError, match="no column 'instruction'"):
        call_command("replies_batch", "--in", str(source), "--out", str(tmp_path / "o.jsonl"), stdout=io.StringIO())
