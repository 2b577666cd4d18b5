"""manage.py replies_evaluate: the service, retrieval only and the bare model in one run, on rows
the knowledge base does not hold, with the figures issue 17 measures and a sample to read."""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from tests.knowledge_fixtures import bitext_rows, csv_text
from workers.evaluation.replies import placeholder_counts

pytestmark = pytest.mark.django_db

SYSTEMS = ("service", "retrieval only", "bare model", "references")


@pytest.fixture
def heldout_csv(tmp_path):
    """The 9th row of each fixture intent: the knowledge base (load_kb) holds the first 8."""
    known = {r["instruction"] for r in bitext_rows()}
    rows = [r for r in bitext_rows(per_intent=9) if r["instruction"] not in known]
    path = tmp_path / "heldout.csv"
    path.write_text(csv_text(rows))
    return path


def _evaluate(path, tmp_path, *extra):
    stdout = io.StringIO()
    call_command("replies_evaluate", "--csv", str(path), "--limit", "4", "--max-new-tokens", "16",
                 "--concurrency", "2", "--json", str(tmp_path / "report.json"), *extra, stdout=stdout)
    return stdout.getvalue(), json.loads((tmp_path / "report.json").read_text())


def test_one_run_reports_every_system_with_a_sample(load_kb, heldout_csv, tmp_path):
    load_kb("conversations")
    sample = tmp_path / "sample.md"
    out, report = _evaluate(heldout_csv, tmp_path, "--sample-out", str(sample), "--sample-size", "3",
                            "--latency-drafts", "1")
    assert report["rows"] == 4 and set(report["systems"]) == set(SYSTEMS)
    for name in SYSTEMS:
        figures = report["systems"][name]
        assert {"similarity", "similarity_with_profile", "intent_match", "looping_rate", "repeated_4gram_rate", "placeholders",
                "placeholders_with_profile", "profile_placeholders_visible", "mean_words"} <= set(figures)
        assert name in out
        # the profile fills what it knows: nothing it has a value for stays visible
        assert figures["profile_placeholders_visible"] == 0
    retrieval = report["systems"]["retrieval only"]
    assert retrieval["placeholders"] > retrieval["placeholders_with_profile"]  # the answers name the phone, the chat...
    assert report["systems"]["references"]["similarity"] == 1.0
    assert -1 <= report["systems"]["service"]["similarity"] <= 1
    # no intent model: intent match is null, and the report says why
    assert report["intent_model"] is None and report["systems"]["service"]["intent_match"] is None
    assert "intent_train" in report["intent_match_unavailable"] and "intent match: null" in out
    latency = report["latency"]
    assert latency["drafts"] == 1 and latency["draft_seconds"]["mean"] > 0
    assert latency["first_token_seconds"]["mean"] <= latency["draft_seconds"]["mean"]
    assert "single drafts (1)" in out

    text = sample.read_text()
    assert text.startswith("# Replies sample: 3 random messages of 4")
    assert len(re.findall(r"^## Row \d+", text, re.M)) == 3
    for heading in ("**Message**", "**service (demo profile)**", "**retrieval only**", "**reference**"):
        assert text.count(heading) == 3
    assert "{{Customer Support Phone Number}}" not in text.split("**retrieval only**")[0]  # the draft is filled
    replies = report["replies"]
    assert len(replies) == 4 and {"message", "reference", "service", "service_with_profile", "retrieval only",
                                  "bare model"} <= set(replies[0])


def test_intent_match_uses_the_registered_classifier(load_kb, heldout_csv, tmp_path, bitext_fixture):
    from tests.workers.runners.test_intent import _train

    rows, _ = bitext_fixture
    intents_csv = tmp_path / "intents.csv"
    intents_csv.write_text(csv_text([{"instruction": r["instruction"], "intent": r["intent"]} for r in rows["conversations"]]))
    load_kb("conversations")
    _train(intents_csv)
    out, report = _evaluate(heldout_csv, tmp_path, "--latency-drafts", "0")
    assert report["intent_model"] == "intent-test@1" and "intent_match_unavailable" not in report
    for name in SYSTEMS:
        assert 0 <= report["systems"][name]["intent_match"] <= 1
    assert report["systems"]["references"]["intent_match"] == 1.0
    assert "latency" not in report and report["intent_references"] == "predicted"

    # against the CSV's labels: the references' own row is the classifier reading written replies
    out, labelled = _evaluate(heldout_csv, tmp_path, "--latency-drafts", "0", "--intent-col", "intent")
    assert labelled["intent_references"] == "labelled" and "labelled intent" in out
    reads = labelled["systems"]["references"]["intent_match"]
    assert 0.5 <= reads <= 1  # the fixture's answers read as their intents
    with pytest.raises(CommandError, match="no column 'label'"):
        _evaluate(heldout_csv, tmp_path, "--intent-col", "label")


def test_placeholder_counts_separate_what_a_profile_would_fill():
    texts = ["Call {{Customer Support Phone Number}} about {{Order Number}}.", "No placeholder."]
    assert placeholder_counts(texts) == (1.0, 0.0)
    assert placeholder_counts(texts, {"customer support phone number": "+1"}) == (1.0, 0.5)


def test_a_csv_without_references_is_an_error(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("instruction,response\nwhere is my order,\n")
    with pytest.raises(CommandError, match="no row with both 'instruction' and 'response'"):
        call_command("replies_evaluate", "--csv", str(path), stdout=io.StringIO())
    path.write_text("instruction,response\nwhere is my order,It is on its way.\n")
    with pytest.raises(CommandError, match="max_new_tokens"):
        call_command("replies_evaluate", "--csv", str(path), "--max-new-tokens", "1", stdout=io.StringIO())
