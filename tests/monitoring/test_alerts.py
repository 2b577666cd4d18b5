"""Alert rule evaluation: Alertmanager semantics on synthetic windows of scored items."""

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from monitoring.models import Alert, AlertTransition, Delivery, Silence
from monitoring.services.alerts import alert_acknowledge, alert_rules_evaluate
from tests.factories import UserFactory
from tests.monitoring.factories import AlertRuleFactory, NewsItemFactory

pytestmark = pytest.mark.django_db


def _items(n: int, *, label: str, at, entity: str = "AAPL", source: str = "wire"):
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}[label]
    return [
        NewsItemFactory(sentiment_label=label, sentiment_score=score, published_at=at, entity=entity, source=source)
        for _ in range(n)
    ]


def _transitions(alert: Alert) -> list[tuple[str, str]]:
    return list(alert.transitions.values_list("from_status", "to_status"))


def test_a_surge_fires_exactly_one_alert_and_a_calm_resolves_it(no_broker):
    AlertRuleFactory(threshold=0.5, min_count=5, webhook_url="http://127.0.0.1:9/hook", emails=["desk@example.com"])
    now = timezone.now()
    _items(4, label="neutral", at=now - timedelta(minutes=50))
    report = alert_rules_evaluate(now=now)
    assert report.fired == 0 and not Alert.objects.exists()  # calm: 0 % negative

    surge = _items(8, label="negative", at=now - timedelta(minutes=5))
    for minutes in (1, 2, 3):  # the surge goes on over three evaluations: still one alert
        alert_rules_evaluate(now=now + timedelta(minutes=minutes))
    alert = Alert.objects.get()
    assert (alert.status, alert.entity, alert.severity) == ("firing", "AAPL", "warning")
    assert alert.value == pytest.approx(8 / 12, abs=1e-4) and alert.item_count == 12
    assert set(alert.item_ids) <= {i.pk for i in surge} | set(alert.item_ids) and alert.item_ids[0] in {i.pk for i in surge}
    assert alert.summary_method == "extractive" and set(alert.summary_item_ids) <= set(alert.item_ids)
    assert _transitions(alert) == [("", "pending"), ("pending", "firing")]
    firing = Delivery.objects.filter(alerts=alert, state="firing")
    assert sorted(firing.values_list("channel", flat=True)) == ["email", "webhook"]

    # Calm: an hour later the surge has left the window; the alert resolves and says so once.
    later = now + timedelta(minutes=70)
    _items(6, label="neutral", at=later - timedelta(minutes=10))
    alert_rules_evaluate(now=later)
    alert_rules_evaluate(now=later + timedelta(minutes=1))
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at == later
    assert _transitions(alert) == [("", "pending"), ("pending", "firing"), ("firing", "resolved")]
    assert Alert.objects.count() == 1
    # Told once per target (the firing notices were never sent here: the resolve joins their deliveries).
    assert sorted(alert.notices.filter(state="resolved").values_list("channel", flat=True)) == ["email", "webhook"]


def test_below_threshold_or_too_few_items_never_opens_an_alert():
    AlertRuleFactory(threshold=0.5, min_count=5)
    now = timezone.now()
    _items(2, label="negative", at=now - timedelta(minutes=5))
    _items(3, label="neutral", at=now - timedelta(minutes=5))  # 40 % < 50 %
    alert_rules_evaluate(now=now)
    AlertRuleFactory(entity="MSFT", threshold=0.5, min_count=5)
    _items(3, label="negative", at=now - timedelta(minutes=5), entity="MSFT")  # 100 % but only 3 items
    alert_rules_evaluate(now=now)
    assert not Alert.objects.exists()


def test_for_needs_consecutive_evaluations_and_a_pending_alert_that_clears_never_fires(no_broker):
    rule = AlertRuleFactory(threshold=0.5, min_count=3, for_evaluations=3, webhook_url="http://127.0.0.1:9/hook")
    now = timezone.now()
    _items(4, label="negative", at=now - timedelta(minutes=5))
    alert_rules_evaluate(now=now)
    alert_rules_evaluate(now=now + timedelta(minutes=1))
    alert = Alert.objects.get()
    assert (alert.status, alert.consecutive) == ("pending", 2)
    assert not Delivery.objects.exists()
    alert_rules_evaluate(now=now + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.status == "firing" and alert.fired_at == now + timedelta(minutes=2)

    # A second entity goes pending once, then its window clears: resolved, never fired, nobody told.
    rule.entity = ""
    rule.save()
    _items(4, label="negative", at=now + timedelta(minutes=2), entity="TSLA")
    alert_rules_evaluate(now=now + timedelta(minutes=3))
    tsla = Alert.objects.get(entity="TSLA")
    assert tsla.status == "pending"
    alert_rules_evaluate(now=now + timedelta(minutes=200))
    tsla.refresh_from_db()
    assert tsla.status == "resolved" and tsla.fired_at is None
    assert _transitions(tsla) == [("", "pending"), ("pending", "resolved")]
    assert not Delivery.objects.filter(alerts=tsla).exists()


def test_cooldown_keeps_a_new_alert_back_after_a_resolve():
    AlertRuleFactory(threshold=0.5, min_count=3, cooldown_minutes=120, window_minutes=30)
    now = timezone.now()
    _items(4, label="negative", at=now - timedelta(minutes=5))
    alert_rules_evaluate(now=now)
    alert_rules_evaluate(now=now + timedelta(minutes=40))  # the window is empty: resolved
    assert Alert.objects.get().status == "resolved"

    _items(4, label="negative", at=now + timedelta(minutes=55))
    report = alert_rules_evaluate(now=now + timedelta(minutes=60))  # 20 min after the resolve
    assert report.cooling == 1 and Alert.objects.count() == 1
    _items(4, label="negative", at=now + timedelta(minutes=175))
    alert_rules_evaluate(now=now + timedelta(minutes=180))  # 140 min after: a new alert
    assert Alert.objects.count() == 2 and Alert.objects.filter(status="firing").count() == 1


def test_a_silence_mutes_deliveries_until_it_ends_and_evaluation_continues(no_broker):
    AlertRuleFactory(threshold=0.5, min_count=3, webhook_url="http://127.0.0.1:9/hook", severity="critical")
    now = timezone.now()
    Silence.objects.create(entity="AAPL", severity="critical", starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(minutes=10))
    Silence.objects.create(entity="MSFT", starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=5))  # other entity
    _items(4, label="negative", at=now - timedelta(minutes=5))
    report = alert_rules_evaluate(now=now)
    alert = Alert.objects.get()
    assert alert.status == "firing" and report.silenced == 1
    assert not Delivery.objects.exists()  # muted, not lost
    alert_rules_evaluate(now=now + timedelta(minutes=5))
    assert not Delivery.objects.exists()
    alert_rules_evaluate(now=now + timedelta(minutes=11))  # the silence has ended; still firing
    assert list(Delivery.objects.values_list("state", "channel", "status")) == [("firing", "webhook", "pending")]
    alert_rules_evaluate(now=now + timedelta(minutes=12))
    assert Delivery.objects.count() == 1  # never the same state twice


def test_mean_score_and_zscore_conditions_and_one_alert_per_entity():
    now = timezone.now()
    AlertRuleFactory(name="mean", entity="", condition="mean_score", threshold=-0.3, min_count=3)
    AlertRuleFactory(name="z", entity="NVDA", condition="negative_zscore", threshold=3.0, min_count=3, window_minutes=60, baseline_windows=6)
    for hours in range(1, 7):  # a trailing baseline of 1 negative item per hour
        _items(1, label="negative", at=now - timedelta(hours=hours, minutes=30), entity="NVDA")
        _items(3, label="positive", at=now - timedelta(hours=hours, minutes=20), entity="NVDA")
    _items(6, label="negative", at=now - timedelta(minutes=10), entity="NVDA")  # z = (6 - 1) / max(0, 1) = 5
    _items(3, label="negative", at=now - timedelta(minutes=10), entity="AMD")
    _items(3, label="positive", at=now - timedelta(minutes=10), entity="INTC")
    alert_rules_evaluate(now=now)
    fired = {(a.rule.name, a.entity): a.value for a in Alert.objects.select_related("rule")}
    assert fired[("z", "NVDA")] == pytest.approx(5.0)
    assert ("mean", "AMD") in fired and ("mean", "NVDA") in fired and ("mean", "INTC") not in fired
    with pytest.raises(IntegrityError):  # the database holds one open alert per rule and entity
        Alert.objects.create(rule=Alert.objects.first().rule, entity=Alert.objects.first().entity, severity="info",
                             started_at=now, last_evaluated_at=now)


def test_sources_scope_and_acknowledge_is_recorded():
    AlertRuleFactory(threshold=0.5, min_count=3, sources=["wire"])
    now = timezone.now()
    _items(5, label="negative", at=now - timedelta(minutes=5), source="blog")
    alert_rules_evaluate(now=now)
    assert not Alert.objects.exists()
    _items(5, label="negative", at=now - timedelta(minutes=5), source="wire")
    alert_rules_evaluate(now=now)
    alert = Alert.objects.get()
    analyst = UserFactory(role="analyst")
    alert_acknowledge(alert=alert, user=analyst)
    alert_acknowledge(alert=alert, user=analyst)  # twice: no second record
    alert.refresh_from_db()
    assert alert.acknowledged_by == analyst and alert.acknowledged_at is not None
    assert AlertTransition.objects.filter(alert=alert, to_status="acknowledged", actor=analyst).count() == 1
