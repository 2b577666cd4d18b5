"""Alert summaries cite only real item ids; the dashboard shows the chart and acknowledges."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job
from monitoring.models import Alert, NewsItem
from monitoring.services.alerts import alert_rules_evaluate
from monitoring.services.summaries import alert_summary_extractive
from tests.factories import UserFactory
from tests.monitoring.factories import AlertRuleFactory, NewsItemFactory
from workers.runners import job_run
from workers.runners.alert_summary import summary_validate

pytestmark = pytest.mark.django_db


def _firing_alert() -> Alert:
    AlertRuleFactory(threshold=0.5, min_count=3)
    now = timezone.now()
    texts = ["Apple cuts its outlook as iPhone demand slumps", "Apple faces an antitrust fine in Europe",
             "Apple supplier warns of weak orders https://t.co/x", "Apple holds its developer conference"]
    for text, label in zip(texts, ["negative", "negative", "negative", "neutral"]):
        NewsItemFactory(text=text, sentiment_label=label, sentiment_score=-0.8 if label == "negative" else 0.0,
                        entity="AAPL", published_at=now - timedelta(minutes=4))
    alert_rules_evaluate(now=now)
    return Alert.objects.get()


def test_summary_validation_rejects_invented_or_missing_citations():
    assert summary_validate("Demand fell [#3]. Fines loom [#4].", allowed_ids={3, 4})[0]
    assert summary_validate("Demand fell [#3]. Fines loom [#9].", allowed_ids={3, 4})[2].startswith("cites ids")
    assert not summary_validate("Demand fell. Fines loom.", allowed_ids={3})[0]
    assert not summary_validate("Demand fell [#3].", allowed_ids={3})[0]  # one sentence
    assert not summary_validate("A [#3]. B [#3]. C [#3]. D [#3]. E [#3].", allowed_ids={3})[0]  # five


def test_extractive_summary_quotes_the_most_negative_items_with_their_ids():
    alert = _firing_alert()
    text, cited = alert_summary_extractive(item_ids=alert.item_ids)
    valid, found, _ = summary_validate(text, allowed_ids=set(alert.item_ids))
    assert valid and found == cited and len(cited) == 2 and set(cited) <= set(alert.item_ids)
    assert "t.co" not in text


def test_summary_job_keeps_the_model_text_only_if_it_cites_real_items(no_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alert = _firing_alert()
    alert.refresh_from_db()
    job = alert.summary_job
    assert job is not None and (job.kind, job.queue) == ("alert_summary", "gpu")
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"  # the tiny random LM of the test settings
    job = Job.objects.get(pk=job.pk)
    candidate = job.candidates.get()
    alert.refresh_from_db()
    assert alert.summary == candidate.text and alert.summary_method == candidate.metadata["method"]
    valid, cited, _ = summary_validate(alert.summary, allowed_ids=set(alert.item_ids))
    assert valid and cited and set(cited) <= set(alert.item_ids)
    if candidate.metadata["method"] == "extractive":  # random weights cannot cite: the fallback
        assert candidate.metadata["rejected_because"]


@pytest.mark.parametrize(
    ("model_text", "reason"),
    [
        ("Apple cut its outlook as iPhone demand slumped [#{a}]. It also faces an antitrust fine in Europe [#{b}].", ""),
        ("Apple cut its outlook by 20% [#{a}]. It also faces an antitrust fine in Europe [#{b}].", "the number 20 is in none of"),
        ("Apple shares soared on record iPhone demand [#{a}]. It faces a fine in Europe [#{b}].",
         "says sentiment is positive; none of"),
        ("Apple cut its outlook [#{a}]. Microsoft faces an antitrust fine in Europe [#{b}].", "the name Microsoft is in none of"),
        ("Apple cut its outlook [#{a}]. Regulators in Europe are worried.", "sentence 2 is unsupported: cites no item"),
    ],
    ids=["supported", "invented-number", "wrong-direction", "invented-name", "uncited-sentence"],
)
def test_the_model_summary_is_kept_only_when_every_sentence_is_supported_by_its_items(no_broker, monkeypatch, model_text, reason):
    from types import SimpleNamespace

    from generation.services.jobs import job_create
    from monitoring.services.scoring import monitor_system_user

    alert = _firing_alert()
    by_text = {i.text: i.pk for i in NewsItem.objects.all()}
    text = model_text.format(a=by_text["Apple cuts its outlook as iPhone demand slumps"],
                             b=by_text["Apple faces an antitrust fine in Europe"])
    completion = SimpleNamespace(text=text, finish_reason="stop", completion_tokens=40)
    monkeypatch.setattr("workers.runners.alert_summary.alert_summary_generate", lambda lm, **kw: (text, completion, [1, 2, 3]))
    job, _ = job_create(owner=monitor_system_user(), kind="alert_summary", params={"alert_id": alert.pk})
    assert job_run(job_id=str(job.id), worker_id="test-worker") == "succeeded"
    alert.refresh_from_db()
    metadata = Job.objects.get(pk=job.pk).candidates.get().metadata
    if not reason:  # what the analyst reads is the model's text
        assert (alert.summary, alert.summary_method, metadata["rejected_because"]) == (text, "model", "")
    else:  # the analyst reads the extractive summary; the job says which sentence failed and why
        assert alert.summary_method == "extractive" and alert.summary != text and alert.summary.startswith("3 of the 4")
        assert reason in metadata["rejected_because"] and metadata["unsupported_sentences"]
        assert metadata["model_text"] == text


def test_dashboard_renders_the_chart_and_acknowledges_with_csrf(client):
    alert = _firing_alert()
    analyst = UserFactory(role="analyst")
    client.force_login(analyst)
    page = client.get("/monitoring/?entity=aapl&period=24h")
    assert page.status_code == 200
    html = page.content.decode()
    # The chart uPlot draws: AAPL's mean score on the score axis, the items per bucket on their own.
    assert '<script src="/static/web/vendor/uplot.iife.min.js"' in html and 'src="/static/web/charts.js"' in html
    spec = json.loads(re.search(r'<script id="sentiment-chart" type="application/json">(.*?)</script>', html, re.S).group(1))
    by_name = {s["name"]: s for s in spec["series"]}
    assert set(by_name) == {"AAPL", "items (entities shown)"} and spec["x_kind"] == "time"
    assert by_name["AAPL"]["unit"] == "score" and by_name["items (entities shown)"]["unit"] == "items"
    # the four items of _firing_alert, published 4 minutes ago: one hourly bucket, mean (3 x -0.8 + 0) / 4
    assert [v for v in by_name["items (entities shown)"]["values"] if v] == [4]
    assert [v for v in by_name["AAPL"]["values"] if v is not None] == [pytest.approx(-0.6)]
    assert spec["units"]["score"]["range"] == [-1, 1]
    fallback = re.search(r"<noscript>(.*?)</noscript>", html, re.S).group(1)  # without JavaScript: the SVG
    assert "<svg" in fallback and ("<polyline" in fallback or "<circle" in fallback)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing is fetched from another host
    assert "AAPL" in html and "Acknowledge" in html

    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(analyst)
    assert strict.post(f"/monitoring/alerts/{alert.pk}/acknowledge").status_code == 403  # no token
    strict.get("/monitoring/")
    token = strict.cookies["csrftoken"].value
    response = strict.post(f"/monitoring/alerts/{alert.pk}/acknowledge", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == analyst

    client.force_login(UserFactory(role="agent"))
    assert client.get("/monitoring/").status_code == 403
