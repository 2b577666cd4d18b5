"""Grouping, inhibition and recurring silences (Alertmanager's routing), with frozen time: what
reaches a desk's inbox and webhook, when, and what the API says about alerts that were held back."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import override_settings

from monitoring.models import Alert, Delivery, DeliveryAlert, Silence
from monitoring.services.alerts import alert_rules_evaluate
from monitoring.services.delivery import delivery_attempt
from tests.monitoring.factories import AlertRuleFactory, NewsItemFactory
from tests.monitoring.test_delivery import SECRET, Receiver

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday


def _negative(entity: str, *, at: datetime, n: int = 4) -> None:
    for _ in range(n):
        NewsItemFactory(sentiment_label="negative", sentiment_score=-0.8, entity=entity, published_at=at - timedelta(minutes=5))


def _positive(entity: str, *, at: datetime, n: int = 4) -> None:
    for _ in range(n):
        NewsItemFactory(sentiment_label="positive", sentiment_score=0.7, entity=entity, published_at=at - timedelta(minutes=5))


def _attempt(delivery: Delivery) -> str:
    return delivery_attempt(delivery_id=delivery.pk).result


# --- grouping -------------------------------------------------------------------------------


# The summary jobs queued here never run: the notification does not wait for them.
@override_settings(GENAI_ALERT_WEBHOOK_SECRET=SECRET, GENAI_WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"], GENAI_ALERT_SUMMARY_WAIT_SECONDS=0)
def test_a_rules_alerts_go_out_as_one_signed_notification_after_group_wait_then_group_interval(
    no_broker, django_capture_on_commit_callbacks
):
    with Receiver() as receiver, time_machine.travel(T0, tick=False) as clock:
        rule = AlertRuleFactory(entity="", threshold=0.5, min_count=3, group_by="rule", group_wait_seconds=30,
                                group_interval_seconds=300, emails=["desk@example.com"], webhook_url=receiver.url)
        for entity in ("AAPL", "MSFT", "TSLA"):
            _negative(entity, at=T0)
        with django_capture_on_commit_callbacks(execute=True):
            report = alert_rules_evaluate()
        assert report.fired == 3 and report.deliveries == 6  # 3 alert states x 2 targets ...
        email, webhook = Delivery.objects.order_by("channel")  # ... in one notification per target
        assert (email.channel, webhook.channel) == ("email", "webhook")
        for delivery in (email, webhook):
            assert delivery.alerts.count() == 3 and delivery.next_attempt_at == T0 + timedelta(seconds=30)
        sends = [(args, options["countdown"]) for name, args, options in no_broker if name == "delivery_send"]
        assert sorted(sends) == sorted([([email.pk], 30.0), ([webhook.pk], 30.0)])  # one task each, due after the wait

        clock.shift(10)  # within the group wait: nothing goes out
        assert (_attempt(email), _attempt(webhook)) == ("skipped", "skipped")
        assert not mail.outbox and not receiver.requests

        clock.shift(21)
        assert (_attempt(email), _attempt(webhook)) == ("delivered", "delivered")
        (message,) = mail.outbox
        assert message.subject == f"[WARNING] {rule.name}: AAPL, MSFT, TSLA firing (3 alerts)"
        for entity in ("AAPL", "MSFT", "TSLA"):
            assert f"Entity: {entity}   State: firing" in message.body
        (request,) = receiver.requests
        assert request["valid"] and request["key"] == webhook.idempotency_key
        assert request["body"]["entities"] == ["AAPL", "MSFT", "TSLA"]
        assert [a["state"] for a in request["body"]["alerts"]] == ["firing"] * 3

        # A fourth entity fires a minute later: its notice waits for the group's interval.
        clock.shift(29)
        _negative("NVDA", at=T0 + timedelta(minutes=1))
        alert_rules_evaluate()
        later = Delivery.objects.get(channel="email", status="pending")
        assert later.next_attempt_at == T0 + timedelta(seconds=31 + 300)
        assert list(later.alerts.values_list("entity", flat=True)) == ["NVDA"]
        clock.shift(60)
        assert _attempt(later) == "skipped"
        clock.move_to(T0 + timedelta(seconds=332))
        assert _attempt(later) == "delivered" and mail.outbox[-1].subject == f"[WARNING] {rule.name}: NVDA firing"

        # Still firing at later evaluations: no state is told twice.
        alert_rules_evaluate()
        assert DeliveryAlert.objects.filter(state="firing").count() == 8 and len(mail.outbox) == 2

        # Two hours on, the window is calm: the four resolves go out together after the group wait.
        clock.move_to(T0 + timedelta(hours=2))
        report = alert_rules_evaluate()
        assert report.resolved == 4
        resolved = Delivery.objects.get(channel="email", state="resolved")
        assert resolved.alerts.count() == 4 and resolved.next_attempt_at == T0 + timedelta(hours=2, seconds=30)
        clock.shift(30)
        assert _attempt(resolved) == "delivered"
        assert mail.outbox[-1].subject == f"[WARNING] {rule.name}: AAPL, MSFT, NVDA, TSLA resolved (4 alerts)"
        assert DeliveryAlert.objects.filter(channel="email").count() == 8  # 4 alerts x (firing, resolved)


def test_grouping_by_entity_keeps_each_entity_apart(no_broker):
    with time_machine.travel(T0, tick=False):
        AlertRuleFactory(entity="", threshold=0.5, min_count=3, group_by="entity", group_wait_seconds=30,
                         emails=["desk@example.com"])
        _negative("AAPL", at=T0)
        _negative("MSFT", at=T0)
        alert_rules_evaluate()
    assert sorted(Delivery.objects.values_list("group_key", flat=True)) == ["AAPL", "MSFT"]
    assert all(d.alerts.count() == 1 for d in Delivery.objects.all())


def test_rules_api_takes_grouping_and_inhibition_and_checks_them(api_for, settings):
    analyst = api_for("analyst")
    body = {"name": "negative share", "condition": "negative_share", "threshold": 0.5}
    created = analyst.post("/api/alert-rules/", body, format="json").json()
    assert (created["group_by"], created["group_wait_seconds"], created["group_interval_seconds"], created["inhibits"]) == (
        "entity", settings.GENAI_ALERT_GROUP_WAIT_SECONDS, settings.GENAI_ALERT_GROUP_INTERVAL_SECONDS, False
    )
    bad = analyst.post("/api/alert-rules/", {**body, "name": "x", "inhibits": True}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"].keys() == {"inhibits"}
    too_long = analyst.post("/api/alert-rules/", {**body, "name": "y", "group_wait_seconds": 10**6}, format="json")
    assert too_long.status_code == 400 and "group_wait_seconds" in too_long.json()["errors"]
    market = analyst.post("/api/alert-rules/", {"name": "market", "condition": "mean_score", "threshold": -0.3, "aggregate": True,
                                                "inhibits": True, "group_by": "rule", "group_wait_seconds": 0}, format="json")
    assert market.status_code == 201 and market.json()["inhibits"] is True


# --- inhibition -----------------------------------------------------------------------------


def test_a_firing_market_wide_rule_mutes_per_entity_alerts_for_the_same_window(no_broker, api_for):
    entities = ["AAPL", "MSFT", "TSLA", "NVDA"]
    with time_machine.travel(T0, tick=False) as clock:
        # "a-..." sorts before "z-...": inhibiting rules are evaluated first all the same.
        per_entity = AlertRuleFactory(name="a-entity", entity="", threshold=0.5, min_count=3, emails=["desk@example.com"])
        market = AlertRuleFactory(name="z-market", entity="", aggregate=True, inhibits=True, condition="mean_score",
                                  threshold=-0.3, min_count=10, emails=["desk@example.com"])
        for entity in entities:
            _negative(entity, at=T0)
        report = alert_rules_evaluate()
        market_alert = Alert.objects.get(rule=market)
        muted = Alert.objects.filter(rule=per_entity)
        assert report.fired == 5 and report.inhibited == 4
        assert list(market_alert.deliveries.values_list("state", flat=True)) == ["firing"]
        assert all(a.inhibited_by_id == market_alert.pk and not a.notices.exists() for a in muted)
        detail = api_for("analyst").get(f"/api/alerts/{muted[0].pk}").json()
        assert detail["inhibited_by"] == market_alert.pk and detail["deliveries"] == []

        # The market calms down (positive news elsewhere) while AAPL stays negative: the market
        # alert resolves at 10:00, and AAPL stays muted for one window of its rule (60 min) after.
        clock.move_to(T0 + timedelta(hours=1))
        _negative("AAPL", at=T0 + timedelta(hours=1))
        for entity in ("IBM", "ORCL", "SAP", "INTC"):
            _positive(entity, at=T0 + timedelta(hours=1))
        alert_rules_evaluate()
        market_alert.refresh_from_db()
        assert market_alert.status == "resolved"
        aapl = Alert.objects.get(rule=per_entity, entity="AAPL", status="firing")
        assert aapl.inhibited_by_id == market_alert.pk and not aapl.notices.exists()

        clock.move_to(T0 + timedelta(hours=2, minutes=1))
        _negative("AAPL", at=T0 + timedelta(hours=2, minutes=1))
        alert_rules_evaluate()
        aapl.refresh_from_db()
        assert aapl.status == "firing" and aapl.inhibited_by_id is None
        assert list(aapl.notices.values_list("state", flat=True)) == ["firing"]  # told now, once
        # Muted alerts that resolved were never told: nobody hears that they resolved.
        assert not DeliveryAlert.objects.filter(alert__rule=per_entity, state="resolved").exists()


def test_an_alert_inhibited_during_its_group_wait_drops_out_of_the_notification(no_broker):
    with time_machine.travel(T0, tick=False) as clock:
        per_entity = AlertRuleFactory(name="entity", entity="", threshold=0.5, min_count=3, group_by="rule",
                                      group_wait_seconds=60, emails=["desk@example.com"])
        AlertRuleFactory(name="market", entity="", aggregate=True, inhibits=True, condition="mean_score", threshold=-0.3,
                         min_count=6, for_evaluations=2)
        _negative("AAPL", at=T0)
        _negative("MSFT", at=T0)
        alert_rules_evaluate()  # the entities fire and wait for their group; the market is pending
        delivery = Delivery.objects.get()
        assert delivery.alerts.count() == 2
        clock.shift(30)
        alert_rules_evaluate()  # the market fires
        clock.shift(31)
        assert _attempt(delivery) == "suppressed" and not mail.outbox
        delivery.refresh_from_db()
        assert delivery.status == "suppressed" and not delivery.alerts.exists()
        assert all(a.inhibited_by_id for a in Alert.objects.filter(rule=per_entity))


# --- silences -------------------------------------------------------------------------------


def test_daily_windows_follow_the_wall_clock_across_daylight_saving_and_stop_repeating():
    # 09:00-10:00 in London every day from Friday 27 March 2026; clocks go forward on the 29th.
    silence = Silence(starts_at=datetime(2026, 3, 27, 9, 0, tzinfo=UTC), ends_at=datetime(2026, 3, 27, 10, 0, tzinfo=UTC),
                      recurrence="daily", repeat_until=datetime(2026, 4, 3, tzinfo=UTC), timezone="Europe/London")
    assert silence.active_at(datetime(2026, 3, 27, 9, 30, tzinfo=UTC))
    assert not silence.active_at(datetime(2026, 3, 27, 10, 0, tzinfo=UTC))
    assert silence.active_at(datetime(2026, 3, 30, 8, 30, tzinfo=UTC))  # 09:30 BST
    assert not silence.active_at(datetime(2026, 3, 30, 9, 30, tzinfo=UTC))  # 10:30 BST
    assert not silence.active_at(datetime(2026, 4, 3, 8, 30, tzinfo=UTC))  # after repeat_until
    assert silence.window_next(datetime(2026, 3, 30, 12, 0, tzinfo=UTC)) == (
        datetime(2026, 3, 31, 8, 0, tzinfo=UTC), datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    )
    assert silence.window_next(datetime(2026, 4, 2, 12, 0, tzinfo=UTC)) is None


def test_a_weekly_silence_mutes_monday_mornings_only(no_broker):
    rule = AlertRuleFactory(threshold=0.5, min_count=3, emails=["desk@example.com"])
    monday_8, monday_12 = T0 - timedelta(hours=1), T0 + timedelta(hours=3)
    silence = Silence.objects.create(rule=rule, starts_at=monday_8 - timedelta(weeks=1), ends_at=monday_12 - timedelta(weeks=1),
                                     recurrence="weekly", repeat_until=T0 + timedelta(weeks=4), comment="weekly call")
    with time_machine.travel(T0, tick=False) as clock:
        _negative("AAPL", at=T0)
        report = alert_rules_evaluate()
        alert = Alert.objects.get()
        assert alert.status == "firing" and report.silenced == 1 and alert.silenced_by == silence
        assert not Delivery.objects.exists()
        clock.move_to(monday_12 + timedelta(minutes=1))  # the window is over: told at the next evaluation
        _negative("AAPL", at=monday_12 + timedelta(minutes=1))
        alert_rules_evaluate()
        alert.refresh_from_db()
        assert alert.silenced_by is None and list(alert.notices.values_list("state", flat=True)) == ["firing"]

    # A week later the same rule's next alert, on a Tuesday, is not muted; on a Monday morning it is.
    assert not silence.active_at(T0 + timedelta(days=8))
    assert silence.active_at(T0 + timedelta(weeks=1))


def test_silences_need_a_comment_record_the_author_and_respect_the_length_limits(api_for, settings):
    settings.GENAI_SILENCE_MAX_HOURS = 12
    settings.GENAI_SILENCE_MAX_RECURRING_DAYS = 30
    analyst = api_for("analyst")
    with time_machine.travel(T0, tick=False) as clock:
        def post(**body):
            return analyst.post("/api/silences/", {"ends_at": (T0 + timedelta(hours=1)).isoformat(), "comment": "release", **body},
                                format="json")

        assert post(comment="").json()["errors"].keys() == {"comment"}
        too_long = post(ends_at=(T0 + timedelta(hours=13)).isoformat()).json()["errors"]
        assert too_long.keys() == {"ends_at"} and "GENAI_SILENCE_MAX_HOURS" in too_long["ends_at"][0]
        assert post(recurrence="daily").json()["errors"].keys() == {"repeat_until"}
        assert "GENAI_SILENCE_MAX_RECURRING_DAYS" in post(
            recurrence="daily", repeat_until=(T0 + timedelta(days=31)).isoformat()
        ).json()["errors"]["repeat_until"][0]
        assert post(timezone="Mars/Olympus").json()["errors"].keys() == {"timezone"}
        assert post(repeat_until=(T0 + timedelta(days=2)).isoformat()).json()["errors"].keys() == {"repeat_until"}

        created = post(recurrence="daily", repeat_until=(T0 + timedelta(days=7)).isoformat(), entity="aapl",
                       comment="daily stand-up, asked by Ann")
        assert created.status_code == 201
        silence = created.json()
        assert (silence["created_by"], silence["comment"], silence["recurrence"]) == (
            analyst.user.username, "daily stand-up, asked by Ann", "daily"
        )
        assert silence["next_window"]["ends_at"].startswith("2026-11-30T10:00")
        assert [s["id"] for s in analyst.get("/api/silences/?active=1").json()["results"]] == [silence["id"]]

        clock.move_to(T0 + timedelta(hours=3))  # between two windows
        assert analyst.get("/api/silences/?active=1").json()["count"] == 0
        listed = analyst.get(f"/api/silences/{silence['id']}").json()
        assert listed["next_window"]["starts_at"].startswith("2026-12-01T09:00")

        expired = analyst.delete(f"/api/silences/{silence['id']}").json()
        assert expired["next_window"] is None
        clock.move_to(T0 + timedelta(days=1, minutes=30))
        assert analyst.get("/api/silences/?active=1").json()["count"] == 0
