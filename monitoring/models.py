"""Sentiment monitoring: news items with their entities and sentiment, the watch list, alert rules,
alerts with every transition, silences, and deliveries with every attempt.

Alert semantics follow Prometheus/Alertmanager: an alert is one (rule, entity) series; it is
``pending`` while its condition holds for fewer than ``for_evaluations`` consecutive evaluations,
then ``firing``, then ``resolved`` when the condition stops holding. At most one alert per rule
and entity is open (pending or firing) at a time; silences mute notifications, not evaluation.
"""

import hashlib

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


def rule_params_check(*, condition: str, threshold: float, entity: str = "", aggregate: bool = False) -> dict[str, list[str]]:
    """Errors by field for a condition's threshold (the serializer checks types and ranges of
    the other fields)."""
    errors: dict[str, list[str]] = {}
    if condition == Condition.NEGATIVE_SHARE and not 0.0 < threshold <= 1.0:
        errors["threshold"] = ["For negative_share, a share in (0, 1]."]
    elif condition == Condition.MEAN_SCORE and not -1.0 <= threshold <= 1.0:
        errors["threshold"] = ["For mean_score, a score in [-1, 1]."]
    elif condition == Condition.NEGATIVE_ZSCORE and not threshold > 0.0:
        errors["threshold"] = ["For negative_zscore, a z-score above 0."]
    if entity and aggregate:
        errors["aggregate"] = ["Only rules without an entity aggregate over all entities."]
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
        ]
        indexes = [models.Index(fields=["enabled"], name="alertrule_enabled")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = rule_params_check(
            condition=self.condition, threshold=self.threshold, entity=self.entity, aggregate=self.aggregate
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


class Silence(TimeStamped):
    """Mutes the notifications of matching alerts between ``starts_at`` and ``ends_at``. A blank
    matcher matches everything; all given matchers must match."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, null=True, blank=True, related_name="silences")
    entity = models.CharField(max_length=64, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after_start")]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="silence_time_range")]

    def matches(self, alert: Alert) -> bool:
        return (
            (self.rule_id is None or self.rule_id == alert.rule_id)
            and (not self.entity or self.entity == alert.entity)
            and (not self.severity or self.severity == alert.severity)
        )


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
    """One notification of one alert state (firing or resolved) to one target: created once
    (the unique constraint), so the same state is never delivered twice."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, help_text="The alert status notified: firing | resolved.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=2000, help_text="The webhook URL or the e-mail address.")
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "state", "channel", "target"], name="delivery_once_per_state")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next")]

    @staticmethod
    def key_for(*, alert_id: int, state: str, channel: str, target: str) -> str:
        """The Idempotency-Key sent with it: the same alert state to the same target, the same key."""
        return hashlib.sha256(f"{alert_id}:{state}:{channel}:{target}".encode()).hexdigest()


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
