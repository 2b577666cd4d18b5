"""The monitoring REST API: ingestion (single, bulk JSON, CSV) with dedupe, rules, alerts,
silences; bad input is a 4xx naming the field; the analyst role is required."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from monitoring.models import Alert, AlertRule, NewsItem, NewsMention, WatchedEntity
from monitoring.services.alerts import alert_rules_evaluate
from tests.monitoring.factories import AlertRuleFactory, NewsItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(api_for):
    return api_for("analyst")


def test_single_and_bulk_ingestion_skip_and_count_duplicates(analyst, no_broker):
    WatchedEntity.objects.create(key="AAPL", name="Apple", aliases=["Apple Inc", "iPhone maker"])
    one = analyst.post("/api/news/", {"source": "wire", "text": "iPhone maker cuts guidance; $TSLA slides too",
                                      "published_at": "2026-11-30T08:00:00Z", "url": "https://news.example/1"}, format="json")
    assert one.status_code == 201, one.json()
    assert one.json()["created"] == 1
    item = NewsItem.objects.get()
    assert item.entities == ["TSLA", "AAPL"] and item.published_at.isoformat() == "2026-11-30T08:00:00+00:00"
    assert set(NewsMention.objects.values_list("entity", flat=True)) == {"AAPL", "TSLA"}

    bulk = analyst.post(
        "/api/news/",
        [
            {"text": "Another story", "url": "https://news.example/1"},  # same url as stored
            {"text": "iPhone  maker cuts guidance; $TSLA slides too"},  # same text (spacing, case aside)
            {"text": "Fresh story about $MSFT", "source": "blog"},
            {"text": "fresh story about $msft", "source": "blog"},  # repeated within the batch
            {"text": "Yet another fresh story"},
        ],
        format="json",
    )
    assert bulk.status_code == 201, bulk.json()
    assert {k: bulk.json()[k] for k in ("received", "created", "duplicates", "duplicates_in_batch")} == {
        "received": 5, "created": 2, "duplicates": 2, "duplicates_in_batch": 1
    }
    assert NewsItem.objects.count() == 3
    assert "No sentiment model" in " ".join(bulk.json()["notes"]) or bulk.json()["score_job_id"]

    listed = analyst.get("/api/news/?entity=msft").json()
    assert [r["text"] for r in listed["results"]] == ["Fresh story about $MSFT"]


def test_csv_upload_ingests_rows(analyst, no_broker):
    csv = (
        "headline,date,url\n"
        "$NVDA beats estimates,2026-11-29T10:00:00Z,https://x.example/a\n"
        "$NVDA guidance raised,2026-11-29,https://x.example/b\n"
        "$NVDA beats estimates,2026-11-29T11:00:00Z,https://x.example/c\n"
    )
    response = analyst.post(
        "/api/news/", {"file": SimpleUploadedFile("feed.csv", csv.encode(), content_type="text/csv"), "source": "desk"}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["created"], response.json()["duplicates_in_batch"]) == (2, 1)
    assert set(NewsItem.objects.values_list("source", flat=True)) == {"desk"}


@override_settings(GENAI_NEWS_MAX_BULK=3)
def test_bad_news_input_is_a_4xx_naming_the_field(analyst, api_for):
    bad_date = analyst.post("/api/news/", {"text": "x", "published_at": "yesterday-ish"}, format="json")
    assert bad_date.status_code == 400 and "published_at" in bad_date.json()["errors"]
    empty = analyst.post("/api/news/", {"text": "   "}, format="json")
    assert empty.status_code == 400 and "text" in empty.json()["errors"]
    in_bulk = analyst.post("/api/news/", [{"text": "fine"}, {"text": "ok", "published_at": "2026-13-45"}], format="json")
    assert in_bulk.status_code == 400 and "published_at" in in_bulk.json()["errors"]["items"]["1"]
    oversize = analyst.post("/api/news/", [{"text": f"item {i}"} for i in range(4)], format="json")
    assert oversize.status_code == 400 and "GENAI_NEWS_MAX_BULK" in oversize.json()["errors"]["items"][0]
    csv = "text\n" + "".join(f"row {i}\n" for i in range(5))
    too_many = analyst.post("/api/news/", {"file": SimpleUploadedFile("n.csv", csv.encode())}, format="multipart")
    assert too_many.status_code == 400 and "file" in too_many.json()["errors"]
    assert analyst.get("/api/news/?since=notadate").status_code == 400
    assert NewsItem.objects.count() == 0  # nothing half-written
    assert api_for("agent").post("/api/news/", {"text": "hi"}, format="json").status_code == 403
    assert api_for("agent").get("/api/alerts/").status_code == 403


def test_rules_validate_their_params(analyst):
    base = {"name": "aapl-neg", "entity": "$aapl", "condition": "negative_share", "threshold": 0.6, "window_minutes": 30}
    created = analyst.post("/api/alert-rules/", base, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["entity"] == "AAPL" and created.json()["for_evaluations"] == 1
    cases = [
        ({"threshold": 1.5}, "threshold"),
        ({"condition": "mean_score", "threshold": -2}, "threshold"),
        ({"condition": "negative_zscore", "threshold": 0}, "threshold"),
        ({"condition": "vibes"}, "condition"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"for_evaluations": 0}, "for_evaluations"),
        ({"emails": ["not-an-email"]}, "emails"),
        ({"webhook_url": "ftp://x.example/hook"}, "webhook_url"),
        ({"entity": "", "aggregate": True, "name": "x", "threshold": 0.5, "sources": ["a"] * 50}, "sources"),
    ]
    for change, field in cases:
        response = analyst.post("/api/alert-rules/", {**base, "name": f"r-{field}", **change}, format="json")
        assert response.status_code == 400 and field in response.json()["errors"], (change, response.json())
    assert analyst.post("/api/alert-rules/", base, format="json").status_code == 409  # the name is taken
    rule_id = created.json()["id"]
    assert analyst.patch(f"/api/alert-rules/{rule_id}", {"threshold": 2}, format="json").status_code == 400
    assert analyst.patch(f"/api/alert-rules/{rule_id}", {"for_evaluations": 3}, format="json").json()["for_evaluations"] == 3
    assert AlertRule.objects.get().threshold == 0.6


def test_alerts_acknowledge_and_silences(analyst):
    rule = AlertRuleFactory(threshold=0.5, min_count=2)
    now = timezone.now()
    for _ in range(3):
        NewsItemFactory(sentiment_label="negative", sentiment_score=-0.7, entity="AAPL", published_at=now - timedelta(minutes=2))
    alert_rules_evaluate(now=now)
    alert = Alert.objects.get()
    listed = analyst.get("/api/alerts/?status=firing").json()["results"]
    assert [a["id"] for a in listed] == [alert.pk]
    assert analyst.get("/api/alerts/?status=burning").status_code == 400
    acked = analyst.post(f"/api/alerts/{alert.pk}/acknowledge")
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == analyst.user.username
    detail = analyst.get(f"/api/alerts/{alert.pk}").json()
    assert [t["to_status"] for t in detail["transitions"]] == ["pending", "firing", "acknowledged"]
    assert analyst.post("/api/alerts/999999/acknowledge").status_code == 404

    body = {"rule": rule.pk, "entity": "aapl", "ends_at": (now + timedelta(hours=1)).isoformat()}
    assert analyst.post("/api/silences/", body, format="json").json()["errors"].keys() == {"comment"}
    silence = analyst.post("/api/silences/", {**body, "comment": "earnings call, Ann"}, format="json")
    assert silence.status_code == 201 and silence.json()["entity"] == "AAPL"
    assert (silence.json()["created_by"], silence.json()["comment"]) == (analyst.user.username, "earnings call, Ann")
    backwards = analyst.post("/api/silences/", {"starts_at": "2026-11-30T10:00:00Z", "ends_at": "2026-11-30T09:00:00Z",
                                                "comment": "x"}, format="json")
    assert backwards.status_code == 400 and "ends_at" in backwards.json()["errors"]
    assert analyst.post("/api/silences/", {"ends_at": "soon", "comment": "x"}, format="json").json()["errors"].keys() == {"ends_at"}
    expired = analyst.delete(f"/api/silences/{silence.json()['id']}")
    assert expired.status_code == 200 and analyst.get("/api/silences/?active=1").json()["count"] == 0


def test_scores_series_and_watch_list(analyst):
    now = timezone.now()
    NewsItemFactory(sentiment_label="negative", sentiment_score=-0.6, entity="AAPL", published_at=now - timedelta(hours=2))
    NewsItemFactory(sentiment_label="positive", sentiment_score=0.8, entity="AAPL", published_at=now - timedelta(hours=2))
    series = analyst.get("/api/scores/series?entity=AAPL&bucket=day").json()
    assert series["AAPL"][0]["count"] == 2 and series["AAPL"][0]["negative"] == 1
    assert series["AAPL"][0]["mean_score"] == pytest.approx(0.1)
    assert analyst.get("/api/scores/series?bucket=minute").status_code == 400
    created = analyst.post("/api/watchlist/", {"key": "$msft", "name": "Microsoft", "aliases": ["Redmond"]}, format="json")
    assert created.status_code == 201 and created.json()["key"] == "MSFT"
    assert analyst.post("/api/watchlist/", {"key": "MSFT", "name": "again"}, format="json").status_code == 409
    assert analyst.post("/api/watchlist/", {"key": "bad key!", "name": "x"}, format="json").status_code == 400
