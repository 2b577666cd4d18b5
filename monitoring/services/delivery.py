"""Sending deliveries: webhooks (JSON POST signed with HMAC-SHA256, with an idempotency key) and
e-mail (Django's mail backend), retried with exponential backoff, every attempt logged.

A delivery is one notification about a group of alerts (``monitoring.services.alerts``). It is
claimed before it is sent (a conditional UPDATE that pushes ``next_attempt_at`` past the send's
timeout), so two copies of its task never send it at the same time; once delivered it is never
sent again. Its first claim seals it: no alert state joins it after, the alerts muted since they
joined (a silence, an inhibiting alert) drop out, and the body and ``Idempotency-Key`` stay the
same for every retry. Receivers verify::

    X-Genai-Signature: sha256=hex(HMAC_SHA256(GENAI_ALERT_WEBHOOK_SECRET, f"{X-Genai-Timestamp}.{body}"))

and drop repeats by the ``Idempotency-Key`` header (a crash between a receiver's 2xx and our
commit is the one case that sends twice).

Webhook targets are http(s) URLs whose host resolves only to public addresses: loopback,
private, link-local, shared, multicast and reserved ranges are refused when a rule is saved
(``webhook_url_problem``) and again at every send, which connects to the address it checked (no
second lookup for a rebinding DNS server to answer differently) and follows no redirects. Hosts in
``GENAI_WEBHOOK_ALLOWED_HOSTS`` (names, addresses or networks) are on-prem receivers let through.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from monitoring.models import Alert, Channel, Delivery, DeliveryAttempt, DeliveryStatus, NewsItem

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Genai-Signature"
TIMESTAMP_HEADER = "X-Genai-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def webhook_signature(*, body: bytes, timestamp: str, secret: str | None = None) -> str:
    secret = settings.GENAI_ALERT_WEBHOOK_SECRET if secret is None else secret
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_signature_verify(*, body: bytes, timestamp: str, signature: str, secret: str | None = None) -> bool:
    return hmac.compare_digest(webhook_signature(body=body, timestamp=timestamp, secret=secret), signature)


PAYLOAD_VERSION = 2
_SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


def delivery_alerts(delivery: Delivery) -> list[tuple[Alert, str]]:
    """(alert, the state told) per alert in the delivery, by entity: an alert whose firing and
    resolved states both joined is told as resolved."""
    told: dict[int, tuple[Alert, str]] = {}
    for notice in delivery.notices.select_related("alert").order_by("alert__entity", "alert_id", "id"):
        if notice.alert_id not in told or notice.state == "resolved":
            told[notice.alert_id] = (notice.alert, notice.state)
    return list(told.values())


def delivery_payload(*, delivery: Delivery) -> dict:
    """The body of a notification: the rule, the group's entity set and each alert with its
    summary and evidence (the webhook's JSON; the e-mail's text is made from it)."""
    told = delivery_alerts(delivery)
    items = NewsItem.objects.in_bulk([i for alert, _ in told for i in alert.item_ids])
    rule = delivery.rule
    return {
        "version": PAYLOAD_VERSION,
        "idempotency_key": delivery.idempotency_key,
        "delivery_id": delivery.pk,
        "state": delivery.state,
        "group_key": delivery.group_key,
        "rule": {"id": rule.pk, "name": rule.name, "condition": rule.condition, "threshold": rule.threshold,
                 "window_minutes": rule.window_minutes, "group_by": rule.group_by},
        "entities": sorted({alert.entity for alert, _ in told}),
        "alerts": [
            {
                "alert_id": alert.pk,
                "state": state,
                "entity": alert.entity,
                "severity": alert.severity,
                "value": alert.value,
                "item_count": alert.item_count,
                "started_at": alert.started_at.isoformat(),
                "fired_at": alert.fired_at.isoformat() if alert.fired_at else None,
                "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
                "summary": alert.summary,
                "summary_item_ids": alert.summary_item_ids,
                "summary_method": alert.summary_method,
                "items": [
                    {"id": i, "source": items[i].source, "url": items[i].url, "published_at": items[i].published_at.isoformat(),
                     "text": items[i].text[:500], "label": items[i].sentiment_label, "score": items[i].sentiment_score}
                    for i in alert.item_ids if i in items
                ],
            }
            for alert, state in told
        ],
    }


@dataclass(frozen=True)
class AttemptOutcome:
    result: str  # delivered | retry | failed | wait | skipped | suppressed
    countdown: float = 0.0


def _backoff(attempt: int) -> float:
    base = settings.GENAI_ALERT_DELIVERY_BACKOFF_SECONDS * (2 ** max(0, attempt - 1))
    return min(base, settings.GENAI_ALERT_DELIVERY_BACKOFF_MAX_SECONDS)


def _summary_pending(alert: Alert) -> bool:
    """A firing alert's model summary is still being written (and not for too long)."""
    from generation.models import FINAL_STATUSES

    if alert.status == "resolved" or alert.summary_job_id is None or alert.fired_at is None:
        return False
    if timezone.now() - alert.fired_at > timedelta(seconds=settings.GENAI_ALERT_SUMMARY_WAIT_SECONDS):
        return False
    return alert.summary_job.status not in FINAL_STATUSES


def _delivery_seal(delivery: Delivery, *, now) -> bool:
    """At the first attempt: drop the firing notices of alerts muted since they joined, and set
    the delivery's state from what is left. False when nothing is left to tell."""
    from monitoring.services.alerts import alert_mute_update

    for notice in delivery.notices.filter(state="firing").select_related("alert", "alert__rule"):
        if alert_mute_update(alert=notice.alert, at=now):
            notice.delete()  # told once the mute ends, if it still fires
    states = set(delivery.notices.values_list("state", flat=True))
    if not states:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SUPPRESSED, next_attempt_at=None, updated_at=now,
            last_error="Every alert in it was muted (silence or inhibition) when it was due.",
        )
        return False
    delivery.state = "firing" if "firing" in states else "resolved"
    Delivery.objects.filter(pk=delivery.pk).update(state=delivery.state, updated_at=now)
    return True


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """One attempt at one delivery; the task schedules the next one from the outcome."""
    now = timezone.now()
    delivery = Delivery.objects.select_related("rule").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return AttemptOutcome("skipped")
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return AttemptOutcome("skipped")  # not due: its own task (or the sweeper) comes back for it
    firing = Alert.objects.filter(notices__delivery=delivery, notices__state="firing").select_related("summary_job")
    if any(_summary_pending(alert) for alert in firing):
        return AttemptOutcome("wait", countdown=5.0)
    lease = now + timedelta(seconds=settings.GENAI_ALERT_WEBHOOK_TIMEOUT_SECONDS * 3)
    claimed = Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=delivery_id, status=DeliveryStatus.PENDING
    ).update(attempts=F("attempts") + 1, next_attempt_at=lease, sealed_at=Coalesce(F("sealed_at"), now), updated_at=now)
    if not claimed:
        return AttemptOutcome("skipped")  # another copy of the task is sending it, or it is not due
    delivery.refresh_from_db()
    number = delivery.attempts
    if number == 1 and not _delivery_seal(delivery, now=now):
        return AttemptOutcome("suppressed")
    started = time.monotonic()
    status_code, error = None, ""
    try:
        if delivery.channel == Channel.WEBHOOK:
            status_code = _webhook_send(delivery)
        else:
            _email_send(delivery)
    except Exception as exc:  # noqa: BLE001 - every failure is logged and retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
        status_code = getattr(exc, "code", None) if isinstance(exc, urllib.error.HTTPError) else None
    ok = not error
    duration = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery, number=number, ok=ok, status_code=status_code, error=error, duration_ms=duration, at=timezone.now()
        )
        if ok:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), next_attempt_at=None, last_error="", updated_at=timezone.now()
            )
            return AttemptOutcome("delivered")
        if number >= settings.GENAI_ALERT_DELIVERY_MAX_ATTEMPTS:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=error, updated_at=timezone.now()
            )
            logger.warning("delivery failed for good", extra={"delivery": delivery.pk, "error": error})
            return AttemptOutcome("failed")
        countdown = _backoff(number)
        Delivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() + timedelta(seconds=countdown), last_error=error, updated_at=timezone.now()
        )
    return AttemptOutcome("retry", countdown=countdown)


class WebhookTargetRefused(Exception):
    """The URL is not http(s), or its host resolves to an address webhooks may not reach."""


def _allowed_host(host: str, addresses: list) -> bool:
    for entry in settings.GENAI_WEBHOOK_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host.lower():
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addresses and all(address in network for address in addresses):
            return True
    return False


def _address_refusal(address) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    for attribute, name in (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                            ("is_unspecified", "unspecified"), ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(address, attribute):
            return name
    return None if address.is_global else "non-public"


def webhook_target_resolve(url: str) -> tuple[str, int, str]:
    """``(host, port, address)`` to send ``url`` to, or WebhookTargetRefused saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookTargetRefused("An http(s) URL.")
    host = parts.hostname
    if not host:
        raise WebhookTargetRefused("The URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookTargetRefused(f"Bad port: {exc}.") from exc
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetRefused(f"The host {host!r} does not resolve.") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not _allowed_host(host, addresses):
        for address in addresses:
            refusal = _address_refusal(address)
            if refusal:
                raise WebhookTargetRefused(
                    f"The host {host!r} resolves to {address}, a {refusal} address; webhook receivers must be public "
                    "(on-prem receivers: GENAI_WEBHOOK_ALLOWED_HOSTS)."
                )
    return host, port, str(addresses[0])


def webhook_url_problem(url: str) -> str | None:
    """Why webhooks may not go to ``url`` (for a 400 when a rule is saved), or None."""
    try:
        webhook_target_resolve(url)
    except WebhookTargetRefused as exc:
        return str(exc)
    return None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to by then."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _webhook_send(delivery: Delivery) -> int:
    payload = delivery_payload(delivery=delivery)
    body = json.dumps(payload, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "genai-desk-alerts/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(body=body, timestamp=timestamp),
        IDEMPOTENCY_HEADER: delivery.idempotency_key,
    }
    url = delivery.target
    host, port, address = webhook_target_resolve(url)  # checked again: DNS may have changed since the rule was saved
    parts = urlsplit(url)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=address, timeout=settings.GENAI_ALERT_WEBHOOK_TIMEOUT_SECONDS)
    try:
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                           headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if 300 <= response.status < 400:  # never followed: a redirect could point anywhere
        raise urllib.error.HTTPError(url, response.status, f"redirect to {response.getheader('Location')!r} not followed",
                                     response.headers, None)
    if response.status >= 400:
        raise urllib.error.HTTPError(url, response.status, response.reason, response.headers, None)
    return response.status


def _email_send(delivery: Delivery) -> None:
    payload = delivery_payload(delivery=delivery)
    rule = delivery.rule
    alerts = payload["alerts"]
    severity = max((a["severity"] for a in alerts), key=lambda s: _SEVERITY_ORDER.get(s, 0), default=rule.severity)
    subject = f"[{severity.upper()}] {rule.name}: {', '.join(payload['entities'])} {delivery.state}"
    if len(alerts) > 1:
        subject += f" ({len(alerts)} alerts)"
    lines = [f"Rule: {rule.name} ({rule.condition} threshold {rule.threshold}, window {rule.window_minutes} min)"]
    for alert in alerts:
        lines += [
            "",
            f"Entity: {alert['entity']}   State: {alert['state']}   Value: {alert['value']}   Items: {alert['item_count']}   "
            f"Alert: #{alert['alert_id']}",
            alert["summary"] or "(no summary)",
            "Items:",
            *[f"  [#{i['id']}] {i['label']} {i['score']:+.2f} {i['source']}: {i['text'][:200]}"
              for i in alert["items"] if i["score"] is not None],
        ]
    lines += ["", f"Reference: {delivery.idempotency_key}"]
    send_mail(subject, "\n".join(lines), settings.GENAI_ALERT_EMAIL_FROM, [delivery.target], fail_silently=False)
