"""``alerts_evaluate``: the figures an analyst can trust summaries by, and a sample to read."""

import csv
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from monitoring.models import Alert, WatchedEntity
from monitoring.services.alerts import alert_rules_evaluate
from tests.monitoring.factories import AlertRuleFactory, NewsItemFactory

pytestmark = pytest.mark.django_db

ROWS = [  # items' ids are their line numbers: the first row is line 2
    ("Boeing cuts 737 output by 10% after FAA probe", "0", "BA"),
    ("Boeing shares slide as airlines cancel orders", "0", "BA"),
    ("Boeing holds its annual meeting on Tuesday", "2", "BA"),
    ("$TSLA Tesla recalls 2,000 cars over faulty seats", "0", ""),
    ("Tesla misses delivery estimates; shares fall", "0", ""),
    ("Tesla opens a new showroom in Berlin", "2", ""),
]
SUMMARIES = {
    "BA": "Boeing cut 737 output by 10% after an FAA probe [#2]. Airlines cancelled orders [#3].",
    "TSLA": "Tesla recalled 5,000 cars [#5]. It missed delivery estimates [#6].",
}


@pytest.fixture
def fixed_summaries(monkeypatch):
    """The model writes SUMMARIES (what is measured here is the judging, not the model)."""
    monkeypatch.setattr("workers.runtime.models.lm_get", lambda name=None: SimpleNamespace(version="test-lm@1"))
    monkeypatch.setattr("workers.runners.alert_summary.alert_summary_generate",
                        lambda lm, *, entity, items, ctx: (SUMMARIES.get(entity, "Nothing to say."), None, []))


def test_figures_and_sample_say_how_many_summaries_are_kept_and_why_not(fixed_summaries, tmp_path, capsys):
    items_csv = tmp_path / "items.csv"
    with items_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label", "entity"), *ROWS])
    WatchedEntity.objects.create(key="TSLA", name="Tesla")  # Tesla's rows have no entity: found by name
    sample = tmp_path / "sample.md"
    call_command("alerts_evaluate", "--csv", str(items_csv), "--entity-col", "entity", "--sample-out", str(sample))
    figures = json.loads(capsys.readouterr().out)
    assert (figures["model"], figures["alerts"]) == ("test-lm@1", 2)
    assert figures["kept_by_structure_share"] == 1.0  # both cite real ids in 2 sentences: both were shown before
    assert (figures["kept_share"], figures["unsupported_share"], figures["kept_by_structure_but_unsupported_share"]) == (
        0.5, 0.5, 0.5
    )
    assert figures["problems"] == {"number": 1} and figures["unsupported_sentence_share"] == 0.25
    assert figures["self_support_share"] == 1.0  # the items' own words pass the checker

    page = sample.read_text()
    assert "## 1. BA: kept" in page and "- [#2] (negative) Boeing cuts 737 output by 10% after FAA probe" in page
    assert "## 2. TSLA: rejected: sentence 1 is unsupported: the number 5000 is in none of #5" in page
    assert "Tesla recalled 5,000 cars [#5]. — UNSUPPORTED: the number 5000 is in none of #5" in page
    assert "The analyst reads (extractive):" in page and '[#5] csv: "$TSLA Tesla recalls 2,000 cars over faulty seats"' in page


def test_stored_alerts_are_evaluated_with_their_items(fixed_summaries, capsys, tmp_path):
    with pytest.raises(CommandError, match="no alert has fired"):
        call_command("alerts_evaluate", "--from-db")
    AlertRuleFactory(entity="BA", threshold=0.5, min_count=3)
    now = timezone.now()
    for text, _, _ in ROWS[:3]:
        NewsItemFactory(text=text, sentiment_label="negative", sentiment_score=-0.8, entity="BA",
                        published_at=now - timedelta(minutes=3))
    alert_rules_evaluate(now=now)
    alert = Alert.objects.get()
    sample = tmp_path / "db.md"
    call_command("alerts_evaluate", "--from-db", "--sample-out", str(sample))
    figures = json.loads(capsys.readouterr().out)
    assert (figures["source"], figures["alerts"]) == ("database", 1)
    assert f"## 1. BA (alert #{alert.pk}): " in sample.read_text()
