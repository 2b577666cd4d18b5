"""Alert rule evaluation with Alertmanager semantics, acknowledgement and notification.

Per rule and entity, each evaluation measures the rule's window of scored items and then::

    no open alert + condition holds  -> pending (consecutive = 1), firing at once if for_evaluations <= 1
                                        (not within cooldown_minutes of the entity's last resolved alert)
    pending + holds                  -> consecutive + 1; firing once consecutive >= for_evaluations
    pending + does not hold          -> resolved (it never fired: nobody is told)
    firing + holds                   -> stays firing (value and evidence refreshed)
    firing + does not hold           -> resolved (told to those who were told it fired)

Every change is an ``AlertTransition`` row. Notifications follow Alertmanager's routing:

- **grouping**: an alert state due for a target joins the group's open ``Delivery`` (the rule's,
  or the rule and entity's with ``group_by=entity``), which is sent once the group's wait is over
  (``group_wait_seconds`` after a group's first state, ``group_interval_seconds`` after its last
  notification); its first attempt seals it, and later states open the next one. A
  ``DeliveryAlert`` row per alert, state and target (unique) means one state is never told twice.
- **silences** (once, daily or weekly) and **inhibition** (a firing market-wide rule with
  ``inhibits`` mutes per-entity alerts while it fires and for one window of the muted rule after)
  hold back firing notices: none is recorded while muted, and a firing alert whose mute ends is
  notified at the next evaluation. Both are checked again when a delivery is sealed, so an alert
  muted during its group's wait drops out of it. Resolved notices go only to targets that were
  told the alert fired (muted ones are recorded as suppressed).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from generation.exceptions import Conflict
from monitoring.models import (
    OPEN_STATUSES,
    Alert,
    AlertRule,
    AlertStatus,
    AlertTransition,
    Channel,
    Condition,
    Delivery,
    DeliveryAlert,
    DeliveryStatus,
    GroupBy,
    NewsItem,
    NewsMention,
    Silence,
)

logger = logging.getLogger(__name__)
AGGREGATE = "*"


@dataclass
class Measurement:
    entity: str
    count: int = 0
    negatives: int = 0
    value: float | None = None
    holds: bool = False
    item_ids: list[int] = field(default_factory=list)  # most negative first


@dataclass
class EvaluationReport:
    rules: int = 0
    series: int = 0
    pending: int = 0
    fired: int = 0
    resolved: int = 0
    cooling: int = 0
    silenced: int = 0
    inhibited: int = 0
    deliveries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# --- measuring ------------------------------------------------------------------------------


def _window_rows(rule: AlertRule, start: datetime, end: datetime) -> dict[str, list[tuple[int, str, float]]]:
    """(item id, label, score) of the scored items in [start, end), by entity ('*' aggregated)."""
    groups: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
    if rule.entity or not rule.aggregate:
        mentions = NewsMention.objects.filter(
            published_at__gte=start, published_at__lt=end, item__sentiment_score__isnull=False
        )
        if rule.entity:
            mentions = mentions.filter(entity=rule.entity)
        if rule.sources:
            mentions = mentions.filter(source__in=rule.sources)
        for entity, item_id, label, score in mentions.values_list(
            "entity", "item_id", "item__sentiment_label", "item__sentiment_score"
        ):
            groups[entity].append((item_id, label, score))
    else:
        items = NewsItem.objects.filter(published_at__gte=start, published_at__lt=end, sentiment_score__isnull=False)
        if rule.sources:
            items = items.filter(source__in=rule.sources)
        for item_id, label, score in items.values_list("id", "sentiment_label", "sentiment_score"):
            groups[AGGREGATE].append((item_id, label, score))
    return groups


def _baseline_negatives(rule: AlertRule, now: datetime) -> dict[str, list[int]]:
    """Negative counts per entity in each of the ``baseline_windows`` windows before the current one."""
    window = timedelta(minutes=rule.window_minutes)
    k = rule.baseline_windows
    start, end = now - window * (k + 1), now - window
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * k)
    if rule.entity or not rule.aggregate:
        rows = NewsMention.objects.filter(
            published_at__gte=start, published_at__lt=end, item__sentiment_label="negative"
        )
        if rule.entity:
            rows = rows.filter(entity=rule.entity)
        if rule.sources:
            rows = rows.filter(source__in=rule.sources)
        pairs = rows.values_list("entity", "published_at")
    else:
        items = NewsItem.objects.filter(published_at__gte=start, published_at__lt=end, sentiment_label="negative")
        if rule.sources:
            items = items.filter(source__in=rule.sources)
        pairs = ((AGGREGATE, at) for at in items.values_list("published_at", flat=True))
    for entity, at in pairs:
        index = int((end - at) / window)  # 0: the window just before the current one
        if 0 <= index < k:
            counts[entity][index] += 1
    return counts


def measure(rule: AlertRule, rows: list[tuple[int, str, float]], *, entity: str, baseline: list[int] | None) -> Measurement:
    m = Measurement(entity=entity, count=len(rows))
    m.negatives = sum(1 for _, label, _ in rows if label == "negative")
    ordered = sorted(rows, key=lambda r: (r[2], r[0]))
    m.item_ids = [item_id for item_id, _, _ in ordered[: settings.GENAI_ALERT_EVIDENCE_ITEMS]]
    if not rows:
        return m
    if rule.condition == Condition.NEGATIVE_SHARE:
        m.value = m.negatives / m.count
        m.holds = m.value >= rule.threshold
    elif rule.condition == Condition.MEAN_SCORE:
        m.value = sum(score for _, _, score in rows) / m.count
        m.holds = m.value <= rule.threshold
    else:
        history = baseline or [0] * rule.baseline_windows
        mean = sum(history) / len(history)
        std = math.sqrt(sum((c - mean) ** 2 for c in history) / len(history))
        # A quiet baseline has no spread: a floor of 1 keeps one stray negative item from being
        # an infinite z-score.
        m.value = (m.negatives - mean) / max(std, 1.0)
        m.holds = m.value >= rule.threshold
    m.holds = m.holds and m.count >= rule.min_count
    m.value = round(m.value, 6)
    return m


# --- evaluating -----------------------------------------------------------------------------


def alert_rules_evaluate(*, now: datetime | None = None, rule_ids: list[int] | None = None) -> EvaluationReport:
    """Evaluate the enabled rules (or ``rule_ids``) at ``now``: the beat task and the end of
    every scoring job call this."""
    now = now or timezone.now()
    report = EvaluationReport()
    # Inhibiting (market-wide) rules first: per-entity alerts firing in the same evaluation see them.
    rules = AlertRule.objects.filter(enabled=True).order_by("-inhibits", "name")
    if rule_ids is not None:
        rules = rules.filter(pk__in=rule_ids)
    for rule in rules:
        report.rules += 1
        try:
            _rule_evaluate(rule=rule, now=now, report=report)
        except Exception:  # noqa: BLE001 - one broken rule must not stop the others
            logger.exception("alert rule evaluation failed", extra={"rule": rule.pk})
    report.deliveries += deliveries_resend_due(now=now)
    return report


def _rule_evaluate(*, rule: AlertRule, now: datetime, report: EvaluationReport) -> None:
    window = timedelta(minutes=rule.window_minutes)
    with transaction.atomic():
        # One evaluation of a rule at a time (beat and a scoring job may both call this).
        rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
        groups = _window_rows(rule, now - window, now)
        baselines = _baseline_negatives(rule, now) if rule.condition == Condition.NEGATIVE_ZSCORE else {}
        open_alerts = {a.entity: a for a in Alert.objects.select_for_update().filter(rule=rule, status__in=OPEN_STATUSES)}
        entities = set(groups) | set(open_alerts)
        if rule.entity:
            entities = {rule.entity}
        elif rule.aggregate:
            entities = {AGGREGATE}
        for entity in sorted(entities):
            measurement = measure(rule, groups.get(entity, []), entity=entity, baseline=baselines.get(entity))
            report.series += 1
            _alert_step(rule=rule, alert=open_alerts.get(entity), m=measurement, now=now, report=report)


def _alert_step(*, rule: AlertRule, alert: Alert | None, m: Measurement, now: datetime, report: EvaluationReport) -> None:
    if alert is None:
        if not m.holds:
            return
        cooldown_since = now - timedelta(minutes=rule.cooldown_minutes)
        if rule.cooldown_minutes and Alert.objects.filter(
            rule=rule, entity=m.entity, status=AlertStatus.RESOLVED, fired_at__isnull=False, resolved_at__gt=cooldown_since
        ).exists():
            report.cooling += 1
            return
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule,
                    entity=m.entity,
                    status=AlertStatus.PENDING,
                    severity=rule.severity,
                    consecutive=1,
                    value=m.value,
                    item_count=m.count,
                    item_ids=m.item_ids,
                    started_at=now,
                    last_evaluated_at=now,
                )
        except IntegrityError:  # another evaluation opened it meanwhile
            return
        _transition(alert=alert, to=AlertStatus.PENDING, at=now, value=m.value, note=_describe(rule, m))
        report.pending += 1
        if rule.for_evaluations <= 1:
            _fire(alert=alert, m=m, now=now, report=report)
        return

    alert.last_evaluated_at = now
    if m.holds:
        alert.consecutive += 1
        alert.value, alert.item_count, alert.item_ids = m.value, m.count, m.item_ids
        alert.save(update_fields=["consecutive", "value", "item_count", "item_ids", "last_evaluated_at", "updated_at"])
        if alert.status == AlertStatus.PENDING and alert.consecutive >= rule.for_evaluations:
            _fire(alert=alert, m=m, now=now, report=report)
        elif alert.status == AlertStatus.FIRING:
            report.deliveries += alert_notify(alert=alert, now=now)  # a silence may have ended
        return

    was_firing = alert.status == AlertStatus.FIRING
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.value = m.value
    alert.save(update_fields=["status", "resolved_at", "value", "last_evaluated_at", "updated_at"])
    note = _describe(rule, m) + ("" if was_firing else "; cleared before firing")
    _transition(alert=alert, to=AlertStatus.RESOLVED, at=now, value=m.value, note=note, previous=AlertStatus.FIRING if was_firing else AlertStatus.PENDING)
    report.resolved += 1
    if was_firing:
        report.deliveries += alert_notify(alert=alert, now=now)


def _fire(*, alert: Alert, m: Measurement, now: datetime, report: EvaluationReport) -> None:
    from monitoring.services.summaries import alert_summary_enqueue, alert_summary_extractive

    alert.status = AlertStatus.FIRING
    alert.fired_at = now
    # Told at once with evidence: the extractive summary now, the model's when its job is done.
    alert.summary, alert.summary_item_ids = alert_summary_extractive(item_ids=alert.item_ids)
    alert.summary_method = "extractive"
    alert.save(update_fields=["status", "fired_at", "summary", "summary_item_ids", "summary_method", "updated_at"])
    _transition(alert=alert, to=AlertStatus.FIRING, at=now, value=m.value, previous=AlertStatus.PENDING,
                note=f"held for {alert.consecutive} consecutive evaluation(s)")
    report.fired += 1
    transaction.on_commit(lambda: alert_summary_enqueue(alert_id=alert.pk))
    created = alert_notify(alert=alert, now=now)
    report.deliveries += created
    if alert.silenced_by_id:
        report.silenced += 1
    elif alert.inhibited_by_id:
        report.inhibited += 1


def _describe(rule: AlertRule, m: Measurement) -> str:
    return f"{rule.condition}={m.value} over {m.count} items ({m.negatives} negative), threshold {rule.threshold}"


def _transition(
    *, alert: Alert, to: str, at: datetime, value: float | None = None, note: str = "",
    previous: str = "", actor: AbstractBaseUser | None = None,
) -> AlertTransition:
    return AlertTransition.objects.create(
        alert=alert, from_status=previous, to_status=to, value=value, note=note[:500], actor=actor, at=at
    )


# --- people ---------------------------------------------------------------------------------


def alert_acknowledge(*, alert: Alert, user: AbstractBaseUser) -> Alert:
    """An analyst takes the alert; recorded as a transition. Acknowledging twice is a no-op."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.acknowledged_at is not None:
            return alert
        if alert.status == AlertStatus.RESOLVED:
            raise Conflict("The alert is resolved already; only pending or firing alerts are acknowledged.", field="status")
        now = timezone.now()
        alert.acknowledged_by, alert.acknowledged_at = user, now
        alert.save(update_fields=["acknowledged_by", "acknowledged_at", "updated_at"])
        _transition(alert=alert, to="acknowledged", at=now, previous=alert.status, actor=user,
                    note=f"acknowledged by {user.get_username()}")
    return alert


# --- notifying ------------------------------------------------------------------------------


def silence_matching(*, alert: Alert, at: datetime) -> Silence | None:
    """A silence muting ``alert`` at ``at`` (once, or a daily or weekly window in force)."""
    candidates = (
        Silence.objects.filter(starts_at__lte=at)
        .filter(Q(recurrence="", ends_at__gt=at) | (~Q(recurrence="") & Q(repeat_until__gt=at)))
        .filter(Q(rule__isnull=True) | Q(rule_id=alert.rule_id))
        .order_by("id")
    )
    return next((s for s in candidates if s.matches(alert) and s.active_at(at)), None)


def inhibitor_matching(*, alert: Alert, at: datetime) -> Alert | None:
    """The market-wide alert that inhibits ``alert`` at ``at``: one of an enabled rule with
    ``inhibits`` that fires at ``at``, or fired within the last window of ``alert``'s rule.
    Market-wide alerts themselves are never inhibited."""
    if alert.entity == AGGREGATE:
        return None
    since = at - timedelta(minutes=alert.rule.window_minutes)
    return (
        Alert.objects.filter(rule__inhibits=True, rule__enabled=True, fired_at__isnull=False, fired_at__lte=at)
        .filter(Q(status=AlertStatus.FIRING) | Q(resolved_at__gt=since))
        .exclude(pk=alert.pk)
        .order_by("fired_at", "id")
        .first()
    )


def alert_mute_update(*, alert: Alert, at: datetime) -> bool:
    """Record what mutes ``alert`` at ``at`` (a silence, else an inhibiting alert) on the alert;
    True when something does."""
    silence = silence_matching(alert=alert, at=at)
    inhibitor = None if silence is not None else inhibitor_matching(alert=alert, at=at)
    silence_id, inhibitor_id = getattr(silence, "pk", None), getattr(inhibitor, "pk", None)
    if (alert.silenced_by_id, alert.inhibited_by_id) != (silence_id, inhibitor_id):
        alert.silenced_by_id, alert.inhibited_by_id = silence_id, inhibitor_id
        Alert.objects.filter(pk=alert.pk).update(silenced_by=silence_id, inhibited_by=inhibitor_id)
    return silence is not None or inhibitor is not None


def _targets(rule: AlertRule) -> list[tuple[str, str]]:
    targets = [(Channel.WEBHOOK, rule.webhook_url)] if rule.webhook_url else []
    return targets + [(Channel.EMAIL, address) for address in rule.emails or []]


def _group_key(alert: Alert) -> str:
    return alert.entity if alert.rule.group_by == GroupBy.ENTITY else ""


def _delivery_open(*, alert: Alert, channel: str, target: str, state: str, now: datetime) -> tuple[Delivery, bool]:
    """The group's delivery to ``target`` that states may still join (not attempted yet), locked,
    or a new one due when the group's wait is over. (delivery, created)."""
    rule, key = alert.rule, _group_key(alert)
    group = Delivery.objects.filter(rule=rule, group_key=key, channel=channel, target=target)
    delivery = group.select_for_update().filter(status=DeliveryStatus.PENDING, attempts=0).order_by("id").first()
    if delivery is not None:
        return delivery, False
    last = group.filter(sealed_at__isnull=False).exclude(status=DeliveryStatus.SUPPRESSED).order_by("-sealed_at").first()
    interval = timedelta(seconds=rule.group_interval_seconds)
    if last is not None and last.sealed_at + interval > now:
        due = last.sealed_at + interval  # the group was told lately: wait for its next turn
    else:
        due = now + timedelta(seconds=rule.group_wait_seconds)  # a new group: wait for others to join
    delivery = Delivery.objects.create(
        rule=rule, group_key=key, state=state, channel=channel, target=target, idempotency_key=uuid.uuid4().hex,
        status=DeliveryStatus.PENDING, next_attempt_at=due,
    )
    return delivery, True


def alert_notify(*, alert: Alert, now: datetime | None = None) -> int:
    """Queue the alert's present state (firing or resolved) for each target not told it yet: it
    joins its group's open delivery (or opens one, sent after commit once due). Returns how many
    alert states were queued; a muted firing alert queues none and records what mutes it."""
    now = now or timezone.now()
    state = alert.status
    if state not in (AlertStatus.FIRING, AlertStatus.RESOLVED):
        return 0
    targets = _targets(alert.rule)
    muted = alert_mute_update(alert=alert, at=now)
    if state == AlertStatus.RESOLVED:
        # Only those told that it fired are told that it resolved.
        told = set(
            alert.notices.filter(state=AlertStatus.FIRING)
            .exclude(delivery__status=DeliveryStatus.SUPPRESSED)
            .values_list("channel", "target")
        )
        targets = [t for t in targets if t in told]
    elif muted:
        return 0  # nothing recorded: told once the mute ends, if still firing
    done = set(alert.notices.filter(state=state).values_list("channel", "target"))
    queued = 0
    for channel, target in targets:
        if (channel, target) in done:
            continue
        try:
            with transaction.atomic():
                if muted:  # a resolve while muted: recorded as suppressed, never sent
                    delivery, new = Delivery.objects.create(
                        rule=alert.rule, group_key=_group_key(alert), state=state, channel=channel, target=target,
                        idempotency_key=uuid.uuid4().hex, status=DeliveryStatus.SUPPRESSED,
                    ), False
                else:
                    delivery, new = _delivery_open(alert=alert, channel=channel, target=target, state=state, now=now)
                DeliveryAlert.objects.create(delivery=delivery, alert=alert, state=state, channel=channel, target=target)
                if state == AlertStatus.FIRING and delivery.state != AlertStatus.FIRING:
                    Delivery.objects.filter(pk=delivery.pk).update(state=AlertStatus.FIRING, updated_at=timezone.now())
        except IntegrityError:  # told meanwhile by another evaluation
            continue
        if muted:
            continue
        queued += 1
        if new:
            countdown = max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds())
            transaction.on_commit(lambda pk=delivery.pk, c=countdown: delivery_schedule(delivery_id=pk, countdown=c))
    return queued


def delivery_schedule(*, delivery_id: int, countdown: float = 0.0) -> None:
    """Send the delivery task; a broker outage only delays it (the evaluation re-sends due ones)."""
    from monitoring.tasks import delivery_send

    try:
        delivery_send.apply_async(args=[delivery_id], countdown=countdown, queue="cpu")
    except Exception:  # noqa: BLE001 - any broker failure; the row stays pending
        logger.exception("delivery enqueue failed; the next evaluation sends it again")


def deliveries_resend_due(*, now: datetime) -> int:
    """Pending deliveries whose next attempt is long overdue (a lost message): send again."""
    overdue = now - timedelta(seconds=max(60.0, settings.GENAI_ALERT_DELIVERY_BACKOFF_SECONDS * 4))
    due = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=overdue).values_list("pk", flat=True)[:500]
    )
    for pk in due:
        delivery_schedule(delivery_id=pk)
    return len(due)
