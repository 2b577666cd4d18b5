"""Sentiment monitoring: news items with their entities and sentiment, the watch list, alert rules,
alerts with every transition, silences, and deliveries with every attempt.

Alert semantics follow Prometheus/Alertmanager: an alert is one (rule, entity) series; it is
``pending`` while its condition holds for fewer than ``for_evaluations`` consecutive evaluations,
then ``firing``, then ``resolved`` when the condition stops holding. At most one alert per rule
and entity is open (pending or firing) at a time; silences (once, daily or weekly) and inhibition
(a firing market-wide rule) mute notifications, not evaluation. Notifications are grouped: one
``Delivery`` carries the alerts of one rule (and, unless the rule groups them all, one entity)
that were due together, after the rule's group wait or group interval; a ``DeliveryAlert`` row
records each alert state it told, once per target.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from generation.models import Job


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# --- watch list and news --------------------------------------------------------------------


class WatchedEntity(TimeStamped):
    """A company or market the analysts follow. Items mention it by ``$SYMBOL`` cashtag, by
    ``name`` or by one of ``aliases`` (whole words, case-insensitive)."""

    key = models.CharField(
        max_length=64, unique=True, help_text="What alerts and filters call it: the ticker (AAPL) or a slug."
    )
    name = models.CharField(max_length=200)
    aliases = models.JSONField(default=list, blank=True, help_text='Other names: ["Apple Inc", "iPhone maker"].')
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "watched entities"

    def __str__(self) -> str:
        return self.key


class SentimentLabel(models.TextChoices):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class NewsItem(TimeStamped):
    source = models.CharField(max_length=64, help_text="Where it came from: a feed, an uploader, a wire.")
    url = models.URLField(max_length=2000, blank=True)
    title = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    published_at = models.DateTimeField()
    language = models.CharField(max_length=16, default="en")
    entities = models.JSONField(default=list, blank=True, help_text="Entity keys found in the text.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the normalised text: duplicates share it.")
    # The current score (by the model version named in ``scored_version``); every score is kept
    # in SentimentScore.
    sentiment_label = models.CharField(max_length=16, choices=SentimentLabel.choices, blank=True)
    sentiment_score = models.FloatField(null=True, blank=True, help_text="P(positive) - P(negative).")
    scored_version = models.CharField(max_length=120, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    ingested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["content_hash"], name="newsitem_unique_hash"),
            models.UniqueConstraint(fields=["url"], condition=~Q(url=""), name="newsitem_unique_url"),
            models.CheckConstraint(
                condition=Q(sentiment_score__isnull=True) | Q(sentiment_score__gte=-1.0, sentiment_score__lte=1.0),
                name="newsitem_score_range",
            ),
        ]
        indexes = [
            models.Index(fields=["published_at"], name="newsitem_published"),
            models.Index(fields=["source", "published_at"], name="newsitem_source_published"),
            models.Index(fields=["scored_version"], name="newsitem_scored_version"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.text[:60]}"


class NewsMention(models.Model):
    """One entity in one item (the rows windows are counted from; ``entities`` mirrors them)."""

    item = models.ForeignKey(NewsItem, on_delete=models.CASCADE, related_name="mentions")
    entity = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    published_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "entity"], name="newsmention_unique")]
        indexes = [models.Index(fields=["entity", "published_at"], name="newsmention_entity_time")]


class SentimentScore(models.Model):
    item = models.ForeignKey(NewsItem, on_delete=models.CASCADE, related_name="scores")
    model_version = models.CharField(max_length=120, help_text='The classifier, "name@version".')
    label = models.CharField(max_length=16, choices=SentimentLabel.choices)
    p_negative = models.FloatField()
    p_neutral = models.FloatField()
    p_positive = models.FloatField()
    score = models.FloatField(help_text="P(positive) - P(negative), in [-1, 1].")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "model_version"], name="sentimentscore_unique"),
            models.CheckConstraint(condition=Q(score__gte=-1.0, score__lte=1.0), name="sentimentscore_range"),
        ]

    @property
    def probabilities(self) -> dict[str, float]:
        return {"negative": self.p_negative, "neutral": self.p_neutral, "positive": self.p_positive}


class Feed(TimeStamped):
    """An RSS/Atom feed polled by beat (GENAI_FEED_POLL_INTERVAL_SECONDS)."""

    url = models.CharField(max_length=2000, unique=True, help_text="http(s) URL, or a local file path in tests.")
    source = models.CharField(max_length=64, help_text="The items' source.")
    enabled = models.BooleanField(default=True)
    etag = models.CharField(max_length=255, blank=True)
    modified = models.CharField(max_length=255, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    items_created = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["source", "url"]

    def __str__(self) -> str:
        return self.url


# --- alert rules ----------------------------------------------------------------------------


class Condition(models.TextChoices):
    NEGATIVE_SHARE = "negative_share", "share of negative items >= threshold"
    MEAN_SCORE = "mean_score", "mean score <= threshold"
    NEGATIVE_ZSCORE = "negative_zscore", "negative count z-score vs trailing baseline >= threshold"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class GroupBy(models.TextChoices):
    ENTITY = "entity", "one notification per rule and entity"
    RULE = "rule", "one notification for the rule's alerts, whatever their entities"


def group_wait_default() -> int:
    return settings.GENAI_ALERT_GROUP_WAIT_SECONDS


def group_interval_default() -> int:
    return settings.GENAI_ALERT_GROUP_INTERVAL_SECONDS


def rule_params_check(
    *, condition: str, threshold: float, entity: str = "", aggregate: bool = False, inhibits: bool = False
) -> dict[str, list[str]]:
    """Errors by field for a condition's threshold and the fields that depend on each other (the
    serializer checks types and ranges of the others)."""
    errors: dict[str, list[str]] = {}
    if condition == Condition.NEGATIVE_SHARE and not 0.0 < threshold <= 1.0:
        errors["threshold"] = ["For negative_share, a share in (0, 1]."]
    elif condition == Condition.MEAN_SCORE and not -1.0 <= threshold <= 1.0:
        errors["threshold"] = ["For mean_score, a score in [-1, 1]."]
    elif condition == Condition.NEGATIVE_ZSCORE and not threshold > 0.0:
        errors["threshold"] = ["For negative_zscore, a z-score above 0."]
    if entity and aggregate:
        errors["aggregate"] = ["Only rules without an entity aggregate over all entities."]
    if inhibits and not aggregate:
        errors["inhibits"] = ["Only a market-wide rule (aggregate, no entity) inhibits per-entity alerts."]
    return errors


class AlertRule(TimeStamped):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    entity = models.CharField(
        max_length=64, blank=True, help_text="Only this entity; blank: every entity, each its own alert."
    )
    aggregate = models.BooleanField(
        default=False, help_text="With no entity: one alert over all items in scope (entity '*') instead of one per entity."
    )
    sources = models.JSONField(default=list, blank=True, help_text="Only items of these sources; empty: all.")
    window_minutes = models.PositiveIntegerField(default=60)
    min_count = models.PositiveIntegerField(default=5, help_text="Fewer scored items in the window: condition false.")
    condition = models.CharField(max_length=32, choices=Condition.choices)
    threshold = models.FloatField()
    baseline_windows = models.PositiveIntegerField(
        default=24, help_text="negative_zscore: the trailing windows the count is compared with."
    )
    for_evaluations = models.PositiveIntegerField(
        default=1, help_text="Consecutive evaluations the condition must hold before the alert fires."
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="After an alert resolves, no new alert for the same entity for this long."
    )
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    group_by = models.CharField(
        max_length=16, choices=GroupBy.choices, default=GroupBy.ENTITY,
        help_text="entity: each entity's alerts notified apart; rule: the rule's alerts due together go out as one notification.",
    )
    group_wait_seconds = models.PositiveIntegerField(
        default=group_wait_default, help_text="A new group's first notification waits this long for more alerts to join it."
    )
    group_interval_seconds = models.PositiveIntegerField(
        default=group_interval_default, help_text="After a group's notification, the next one about it waits this long."
    )
    inhibits = models.BooleanField(
        default=False,
        help_text="Aggregate rules only: while its alert fires (and for one window of the muted rule after), "
                  "notifications of per-entity alerts of every rule are muted.",
    )
    webhook_url = models.URLField(max_length=2000, blank=True)
    emails = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(window_minutes__gte=1), name="alertrule_window_positive"),
            models.CheckConstraint(condition=Q(for_evaluations__gte=1), name="alertrule_for_positive"),
            models.CheckConstraint(condition=Q(min_count__gte=1), name="alertrule_min_count_positive"),
            models.CheckConstraint(
                condition=~Q(condition="negative_share") | Q(threshold__gt=0.0, threshold__lte=1.0),
                name="alertrule_share_range",
            ),
            models.CheckConstraint(
                condition=~Q(condition="mean_score") | Q(threshold__gte=-1.0, threshold__lte=1.0),
                name="alertrule_mean_range",
            ),
            models.CheckConstraint(
                condition=~Q(condition="negative_zscore") | Q(threshold__gt=0.0), name="alertrule_zscore_positive"
            ),
            models.CheckConstraint(condition=~Q(inhibits=True) | Q(aggregate=True), name="alertrule_inhibits_aggregate"),
        ]
        indexes = [models.Index(fields=["enabled"], name="alertrule_enabled")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = rule_params_check(
            condition=self.condition, threshold=self.threshold, entity=self.entity, aggregate=self.aggregate,
            inhibits=self.inhibits,
        )
        if errors:
            raise ValidationError(errors)


class AlertStatus(models.TextChoices):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


OPEN_STATUSES = (AlertStatus.PENDING, AlertStatus.FIRING)


class Alert(TimeStamped):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    entity = models.CharField(max_length=64, help_text="The entity key, or '*' for an aggregate rule.")
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.PENDING)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    consecutive = models.PositiveIntegerField(default=0, help_text="Consecutive evaluations the condition held.")
    value = models.FloatField(null=True, blank=True, help_text="The condition's measure at the last evaluation.")
    item_count = models.PositiveIntegerField(default=0)
    item_ids = models.JSONField(default=list, blank=True, help_text="Evidence: the window's items, most negative first.")
    started_at = models.DateTimeField(help_text="Became pending.")
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField()
    summary = models.TextField(blank=True)
    summary_item_ids = models.JSONField(default=list, blank=True, help_text="The item ids the summary cites.")
    summary_method = models.CharField(max_length=16, blank=True, help_text="model | extractive")
    summary_job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # Why its notifications are held back, as of the last time one was due (blank: they are not).
    silenced_by = models.ForeignKey("Silence", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    inhibited_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The firing market-wide alert that mutes this one.",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "entity"], condition=Q(status__in=["pending", "firing"]), name="alert_one_open"
            ),
            models.CheckConstraint(
                condition=~Q(status="firing") | Q(fired_at__isnull=False), name="alert_firing_has_fired_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False), name="alert_resolved_has_resolved_at"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "started_at"], name="alert_status_started"),
            models.Index(fields=["rule", "entity", "resolved_at"], name="alert_rule_entity_resolved"),
        ]

    def __str__(self) -> str:
        return f"{self.rule.name}[{self.entity}] {self.status}"


class AlertTransition(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, blank=True, help_text="Blank when the alert was created.")
    to_status = models.CharField(max_length=16, help_text="pending | firing | resolved | acknowledged")
    value = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["alert", "at"], name="alerttransition_alert_at")]


class Recurrence(models.TextChoices):
    ONCE = "", "once"
    DAILY = "daily"
    WEEKLY = "weekly"


RECURRENCE_PERIODS = {Recurrence.DAILY: timedelta(days=1), Recurrence.WEEKLY: timedelta(days=7)}


def silence_params_check(
    *, starts_at: datetime, ends_at: datetime, recurrence: str = "", repeat_until: datetime | None = None,
    timezone_name: str = "UTC",
) -> dict[str, list[str]]:
    """Errors by field of a silence's time range: it ends after it starts, lasts at most
    GENAI_SILENCE_MAX_HOURS, and a daily or weekly one is shorter than its period and stops
    repeating within GENAI_SILENCE_MAX_RECURRING_DAYS."""
    errors: dict[str, list[str]] = {}
    length = ends_at - starts_at
    max_hours = settings.GENAI_SILENCE_MAX_HOURS
    if length <= timedelta(0):
        errors["ends_at"] = ["Must be after starts_at."]
    elif length > timedelta(hours=max_hours):
        errors["ends_at"] = [
            f"A silence lasts at most {max_hours} hours (GENAI_SILENCE_MAX_HOURS); this one {length.total_seconds() / 3600:.1f}."
        ]
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = [f"Not a time zone: {timezone_name!r}; an IANA name such as 'Europe/London' or 'UTC'."]
    if recurrence:
        period = RECURRENCE_PERIODS[recurrence]
        max_days = settings.GENAI_SILENCE_MAX_RECURRING_DAYS
        if "ends_at" not in errors and length >= period:
            errors["ends_at"] = [f"A {recurrence} silence's window must be shorter than its period ({period})."]
        if repeat_until is None:
            errors["repeat_until"] = [f"A {recurrence} silence needs repeat_until (at most {max_days} days after starts_at)."]
        elif repeat_until <= starts_at:
            errors["repeat_until"] = ["Must be after starts_at."]
        elif repeat_until - starts_at > timedelta(days=max_days):
            errors["repeat_until"] = [
                f"A recurring silence repeats for at most {max_days} days (GENAI_SILENCE_MAX_RECURRING_DAYS)."
            ]
    elif repeat_until is not None:
        errors["repeat_until"] = ["Only daily or weekly silences repeat; set recurrence."]
    return errors


class Silence(TimeStamped):
    """Mutes the notifications of matching alerts between ``starts_at`` and ``ends_at``; a daily
    or weekly silence mutes the same wall-clock window (in ``timezone``) every day or week, from
    the first one (``starts_at`` .. ``ends_at``) until ``repeat_until``. A blank matcher matches
    everything; all given matchers must match. Who made it (``created_by``) and why (``comment``)
    are kept."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, null=True, blank=True, related_name="silences")
    entity = models.CharField(max_length=64, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    starts_at = models.DateTimeField(help_text="The (first) window's start.")
    ends_at = models.DateTimeField(help_text="The (first) window's end.")
    recurrence = models.CharField(max_length=8, choices=Recurrence.choices, blank=True, default=Recurrence.ONCE)
    repeat_until = models.DateTimeField(null=True, blank=True, help_text="A daily or weekly silence mutes nothing from then on.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="The wall clock a recurring window repeats in.")
    comment = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after_start"),
            models.CheckConstraint(
                condition=Q(recurrence="") | Q(repeat_until__isnull=False), name="silence_recurring_has_end"
            ),
        ]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="silence_time_range")]

    def __str__(self) -> str:
        return f"silence #{self.pk} ({self.recurrence or 'once'})"

    def clean(self) -> None:
        if self.starts_at and self.ends_at:
            errors = silence_params_check(
                starts_at=self.starts_at, ends_at=self.ends_at, recurrence=self.recurrence,
                repeat_until=self.repeat_until, timezone_name=self.timezone,
            )
            if errors:
                raise ValidationError(errors)

    def matches(self, alert: Alert) -> bool:
        return (
            (self.rule_id is None or self.rule_id == alert.rule_id)
            and (not self.entity or self.entity == alert.entity)
            and (not self.severity or self.severity == alert.severity)
        )

    # A recurring window is the first one moved by whole periods on the wall clock of ``timezone``
    # (09:00-10:00 London stays 09:00-10:00 across a change of daylight saving time).

    def _occurrence(self, index: int) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.timezone)
        first = self.starts_at.astimezone(zone).replace(tzinfo=None)
        length = self.ends_at.astimezone(zone).replace(tzinfo=None) - first
        start = first + RECURRENCE_PERIODS[self.recurrence] * index
        return start.replace(tzinfo=zone), (start + length).replace(tzinfo=zone)

    def _index(self, at: datetime) -> int:
        zone = ZoneInfo(self.timezone)
        elapsed = at.astimezone(zone).replace(tzinfo=None) - self.starts_at.astimezone(zone).replace(tzinfo=None)
        return max(0, elapsed // RECURRENCE_PERIODS[self.recurrence])

    def window_next(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The window in force at ``at``, else the next one; None when none is left."""
        if not self.recurrence:
            return (self.starts_at, self.ends_at) if self.ends_at > at else None
        index = self._index(at)
        for k in (index, index + 1):
            start, end = self._occurrence(k)
            if self.repeat_until is not None:
                if start >= self.repeat_until:
                    return None
                end = min(end, self.repeat_until)
            if end > at:
                return start, end
        return None

    def active_at(self, at: datetime) -> bool:
        window = self.window_next(at)
        return window is not None and window[0] <= at < window[1]


# --- delivery -------------------------------------------------------------------------------


class Channel(models.TextChoices):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # retries used up
    SUPPRESSED = "suppressed"  # silenced when it was due


class Delivery(TimeStamped):
    """One notification to one target: the alert states of one group (a rule, and with
    ``group_by=entity`` one of its entities) that were due together. States join it until its
    first attempt seals it; each alert state is told once per target (``DeliveryAlert``'s unique
    constraint), so the same state is never delivered twice."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="deliveries")
    group_key = models.CharField(max_length=64, blank=True, help_text="The entity when the rule groups by entity; blank by rule.")
    alerts = models.ManyToManyField(Alert, through="DeliveryAlert", related_name="deliveries")
    state = models.CharField(max_length=16, help_text="firing when an alert in it fires, else resolved.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=2000, help_text="The webhook URL or the e-mail address.")
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Pending: when it is due (group wait, interval, backoff).")
    sealed_at = models.DateTimeField(null=True, blank=True, help_text="Its first attempt: no alert joined it after.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next"),
            models.Index(fields=["rule", "group_key", "channel", "status"], name="delivery_group"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} {self.rule_id}/{self.group_key or '*'} {self.state} {self.channel}"


class DeliveryAlert(models.Model):
    """One alert state a delivery tells: unique per alert, state and target."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="notices")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notices")
    state = models.CharField(max_length=16, help_text="The alert status told: firing | resolved.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=2000)

    class Meta:
        ordering = ["delivery", "alert"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "state", "channel", "target"], name="deliveryalert_once_per_state")
        ]


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    at = models.DateTimeField()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="deliveryattempt_unique")]
