"""Deliveries: a real local HTTP receiver verifies the HMAC signature; failures are retried with
backoff, every attempt logged, and one alert state is delivered once."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from monitoring.models import Alert, Delivery, DeliveryAttempt
from monitoring.services.alerts import alert_notify, alert_rules_evaluate
from monitoring.services.delivery import delivery_attempt, webhook_signature_verify
from tests.monitoring.factories import AlertRuleFactory, NewsItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_receivers(settings):
    """The receivers here listen on loopback: an on-prem receiver, let through by the setting."""
    settings.GENAI_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
SECRET = "test-webhook-secret"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that checks signatures, answers ``fail_first`` requests
    with 503, and remembers idempotency keys it accepted."""

    def __init__(self, fail_first: int = 0):
        self.requests: list[dict] = []
        self.accepted_keys: list[str] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = webhook_signature_verify(
                    body=body, timestamp=self.headers["X-Genai-Timestamp"], signature=self.headers["X-Genai-Signature"], secret=SECRET
                )
                receiver.requests.append({"valid": valid, "key": self.headers["Idempotency-Key"], "body": json.loads(body)})
                if not valid:
                    status = 401
                elif len(receiver.requests) <= receiver.fail_first:
                    status = 503
                else:
                    status = 200
                    receiver.accepted_keys.append(self.headers["Idempotency-Key"])
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _firing_alert(**rule_kwargs) -> Alert:
    rule = AlertRuleFactory(threshold=0.5, min_count=3, **rule_kwargs)
    now = timezone.now()
    for _ in range(4):
        NewsItemFactory(sentiment_label="negative", sentiment_score=-0.9, entity="AAPL", published_at=now - timedelta(minutes=3))
    alert_rules_evaluate(now=now)
    return Alert.objects.get(rule=rule)


def _due(delivery: Delivery) -> None:
    """Skip the backoff wait: make the next attempt due now."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


@override_settings(GENAI_ALERT_WEBHOOK_SECRET=SECRET, GENAI_ALERT_DELIVERY_BACKOFF_SECONDS=2.0)
def test_webhook_is_signed_retried_with_backoff_and_delivered_once(no_broker):
    with Receiver(fail_first=2) as receiver:
        alert = _firing_alert(webhook_url="http://placeholder.invalid/")
        alert.rule.webhook_url = receiver.url
        alert.rule.save()
        Delivery.objects.all().delete()
        assert alert_notify(alert=alert) == 1
        delivery = Delivery.objects.get()

        first = delivery_attempt(delivery_id=delivery.pk)
        assert (first.result, first.countdown) == ("retry", 2.0)
        assert delivery_attempt(delivery_id=delivery.pk).result == "skipped"  # not due yet: no second send
        _due(delivery)
        second = delivery_attempt(delivery_id=delivery.pk)
        assert (second.result, second.countdown) == ("retry", 4.0)  # exponential backoff
        _due(delivery)
        assert delivery_attempt(delivery_id=delivery.pk).result == "delivered"
        _due(delivery)
        assert delivery_attempt(delivery_id=delivery.pk).result == "skipped"  # a repeated task sends nothing

    assert len(receiver.requests) == 3 and all(r["valid"] for r in receiver.requests)
    assert receiver.accepted_keys == [delivery.idempotency_key]
    assert len({r["key"] for r in receiver.requests}) == 1  # retries carry the same key
    body = receiver.requests[-1]["body"]
    assert (body["version"], body["state"], body["entities"], body["delivery_id"]) == (2, "firing", ["AAPL"], delivery.pk)
    (told,) = body["alerts"]
    assert (told["alert_id"], told["state"], told["entity"]) == (alert.pk, "firing", "AAPL")
    assert {i["id"] for i in told["items"]} == set(alert.item_ids) and told["summary"]
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "ok", "status_code"))
    assert attempts == [(1, False, 503), (2, False, 503), (3, True, 200)]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert alert_notify(alert=alert) == 0  # the same state is never delivered twice


@override_settings(GENAI_ALERT_WEBHOOK_SECRET="another-secret", GENAI_ALERT_DELIVERY_MAX_ATTEMPTS=2)
def test_a_bad_signature_is_refused_and_retries_stop_at_the_limit(no_broker):
    with Receiver() as receiver:
        alert = _firing_alert(webhook_url=receiver.url)
        delivery = Delivery.objects.get(alerts=alert)
        assert delivery_attempt(delivery_id=delivery.pk).result == "retry"
        _due(delivery)
        assert delivery_attempt(delivery_id=delivery.pk).result == "failed"
    assert [r["valid"] for r in receiver.requests] == [False, False]
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "401" in delivery.last_error and delivery.attempt_log.count() == 2


def test_email_goes_through_the_mail_backend(no_broker):
    alert = _firing_alert(emails=["desk@example.com"])
    delivery = Delivery.objects.get(alerts=alert, channel="email")
    assert delivery_attempt(delivery_id=delivery.pk).result == "delivered"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["desk@example.com"] and "AAPL firing" in message.subject
    assert f"[#{alert.item_ids[0]}]" in message.body


def test_the_summary_job_is_waited_for_a_while(no_broker):
    from tests.factories import JobFactory

    alert = _firing_alert(emails=["desk@example.com"])
    Alert.objects.filter(pk=alert.pk).update(summary_job=JobFactory(kind="alert_summary", status="running"))
    delivery = Delivery.objects.get(alerts=alert)
    assert delivery_attempt(delivery_id=delivery.pk).result == "wait"
    with override_settings(GENAI_ALERT_SUMMARY_WAIT_SECONDS=0.0):
        assert delivery_attempt(delivery_id=delivery.pk).result == "delivered"
