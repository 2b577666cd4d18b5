"""Alert summaries cite only real item ids; the dashboard shows the chart and acknowledges."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job
from monitoring.models import Alert
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


def test_dashboard_renders_an_inline_svg_chart_and_acknowledges_with_csrf(client):
    alert = _firing_alert()
    analyst = UserFactory(role="analyst")
    client.force_login(analyst)
    page = client.get("/monitoring/?entity=aapl&period=24h")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "<polyline" in html or "<circle" in html
    assert "cdn" not in html.lower() and "AAPL" in html and "Acknowledge" in html

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
