"""Input and output serializers of the monitoring API."""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitoring.inputs import DATE_HELP, NewsItemInputSerializer  # noqa: F401 - the API's input too
from monitoring.models import (
    Alert,
    AlertRule,
    AlertTransition,
    Condition,
    Delivery,
    DeliveryAlert,
    DeliveryAttempt,
    GroupBy,
    NewsItem,
    Recurrence,
    SentimentScore,
    Severity,
    Silence,
    WatchedEntity,
)


class NewsUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (header: text, published_at, source, url, title, ...) or JSON/JSONL.")
    source = serializers.CharField(max_length=64, required=False, help_text="Default source of rows without one.")


class IngestReportSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Skipped: the same url or text is stored already.")
    duplicates_in_batch = serializers.IntegerField(help_text="Skipped: repeated within this request.")
    item_ids = serializers.ListField(child=serializers.IntegerField())
    score_job_id = serializers.CharField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())


class NewsItemOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = NewsItem
        fields = [
            "id", "source", "url", "title", "text", "published_at", "language", "entities", "content_hash",
            "sentiment_label", "sentiment_score", "scored_version", "scored_at", "created_at",
        ]


class ScoreOutputSerializer(serializers.ModelSerializer):
    probabilities = serializers.DictField(child=serializers.FloatField(), read_only=True)

    class Meta:
        model = SentimentScore
        fields = ["id", "item", "model_version", "label", "probabilities", "score", "created_at"]


class SeriesPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    count = serializers.IntegerField()
    negative = serializers.IntegerField()
    mean_score = serializers.FloatField()


class WatchedEntitySerializer(serializers.ModelSerializer):
    aliases = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)

    class Meta:
        model = WatchedEntity
        fields = ["id", "key", "name", "aliases", "active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"key": {"validators": []}}

    def validate_key(self, value: str) -> str:
        value = value.strip().lstrip("$").upper()
        if not value or not all(c.isalnum() or c in "._-" for c in value):
            raise serializers.ValidationError("Letters, digits, '.', '_' and '-' (a ticker like AAPL, or a slug).")
        return value


class AlertRuleSerializer(serializers.ModelSerializer):
    condition = serializers.ChoiceField(choices=Condition.choices)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.WARNING)
    window_minutes = serializers.IntegerField(min_value=1, max_value=settings.GENAI_ALERT_MAX_WINDOW_MINUTES, default=60)
    min_count = serializers.IntegerField(min_value=1, max_value=1_000_000, default=5)
    baseline_windows = serializers.IntegerField(min_value=2, max_value=settings.GENAI_ALERT_MAX_BASELINE_WINDOWS, default=24)
    for_evaluations = serializers.IntegerField(min_value=1, max_value=settings.GENAI_ALERT_MAX_FOR, default=1)
    cooldown_minutes = serializers.IntegerField(min_value=0, max_value=settings.GENAI_ALERT_MAX_COOLDOWN_MINUTES, default=60)
    sources = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list, max_length=settings.GENAI_ALERT_MAX_SOURCES
    )
    emails = serializers.ListField(
        child=serializers.EmailField(), required=False, default=list, max_length=settings.GENAI_ALERT_MAX_EMAILS
    )
    webhook_url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")
    entity = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    group_by = serializers.ChoiceField(
        choices=GroupBy.choices, default=GroupBy.ENTITY,
        help_text="entity: one notification per rule and entity; rule: the rule's alerts due together in one notification.",
    )
    group_wait_seconds = serializers.IntegerField(
        min_value=0, max_value=settings.GENAI_ALERT_MAX_GROUP_WAIT_SECONDS, default=settings.GENAI_ALERT_GROUP_WAIT_SECONDS,
        help_text="A new group's first notification waits this long for more alerts (GENAI_ALERT_GROUP_WAIT_SECONDS).",
    )
    group_interval_seconds = serializers.IntegerField(
        min_value=0, max_value=settings.GENAI_ALERT_MAX_GROUP_INTERVAL_SECONDS,
        default=settings.GENAI_ALERT_GROUP_INTERVAL_SECONDS,
        help_text="After a group's notification, the next one about it waits this long (GENAI_ALERT_GROUP_INTERVAL_SECONDS).",
    )

    class Meta:
        model = AlertRule
        fields = [
            "id", "name", "description", "enabled", "entity", "aggregate", "sources", "window_minutes", "min_count",
            "condition", "threshold", "baseline_windows", "for_evaluations", "cooldown_minutes", "severity",
            "group_by", "group_wait_seconds", "group_interval_seconds", "inhibits",
            "webhook_url", "emails", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}

    def validate_entity(self, value: str) -> str:
        return value.strip().lstrip("$").upper()

    def validate_webhook_url(self, value: str) -> str:
        from monitoring.services.delivery import webhook_url_problem

        problem = webhook_url_problem(value) if value else None
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict) -> dict:
        from monitoring.models import rule_params_check

        instance = self.instance
        get = lambda key, default: attrs.get(key, getattr(instance, key, default) if instance else default)  # noqa: E731
        if "threshold" not in attrs and instance is None:
            raise serializers.ValidationError({"threshold": ["This field is required."]})
        errors = rule_params_check(
            condition=get("condition", ""), threshold=get("threshold", 0.0), entity=get("entity", ""),
            aggregate=get("aggregate", False), inhibits=get("inhibits", False),
        )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class TransitionSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AlertTransition
        fields = ["from_status", "to_status", "value", "note", "actor", "at"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "ok", "status_code", "error", "duration_ms", "at"]
        # Output only: input limits would come from the database's column ranges and make the
        # schema differ between SQLite and PostgreSQL.
        read_only_fields = fields


class NoticeSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAlert
        fields = ["alert", "state"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    alerts = NoticeSerializer(source="notices", many=True, read_only=True, help_text="Every alert state it tells.")
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "rule", "group_key", "state", "channel", "target", "idempotency_key", "status", "attempts",
                  "next_attempt_at", "sealed_at", "delivered_at", "last_error", "alerts", "attempt_log"]
        read_only_fields = fields


class AlertOutputSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "rule", "rule_name", "entity", "status", "severity", "consecutive", "value", "item_count", "item_ids",
            "started_at", "fired_at", "resolved_at", "last_evaluated_at", "summary", "summary_item_ids", "summary_method",
            "summary_job", "acknowledged_by", "acknowledged_at", "silenced_by", "inhibited_by",
        ]
        read_only_fields = fields


class AlertDetailSerializer(AlertOutputSerializer):
    transitions = TransitionSerializer(many=True, read_only=True)
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(AlertOutputSerializer.Meta):
        fields = [*AlertOutputSerializer.Meta.fields, "transitions", "deliveries"]
        read_only_fields = fields


class SilenceWindowSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class SilenceSerializer(serializers.ModelSerializer):
    rule = serializers.PrimaryKeyRelatedField(queryset=AlertRule.objects.all(), required=False, allow_null=True)
    starts_at = serializers.DateTimeField(help_text=DATE_HELP + " Default: now. A recurring silence's first window.", required=False)
    ends_at = serializers.DateTimeField(
        help_text=DATE_HELP + f" At most GENAI_SILENCE_MAX_HOURS ({settings.GENAI_SILENCE_MAX_HOURS}) after starts_at."
    )
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, allow_blank=True, default="")
    entity = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    recurrence = serializers.ChoiceField(
        choices=Recurrence.choices, required=False, allow_blank=True, default="",
        help_text="Blank: once; daily or weekly: the window repeats on the wall clock of `timezone` until repeat_until.",
    )
    repeat_until = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text=f"Required for a recurring silence: at most GENAI_SILENCE_MAX_RECURRING_DAYS "
                  f"({settings.GENAI_SILENCE_MAX_RECURRING_DAYS}) days after starts_at.",
    )
    timezone = serializers.CharField(max_length=64, required=False, default="UTC", help_text="IANA name, e.g. Europe/London.")
    comment = serializers.CharField(max_length=500, help_text="Why, and who asked: required.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, help_text="The author.")
    next_window = serializers.SerializerMethodField(help_text="The window in force now, else the next one; null when none is left.")

    class Meta:
        model = Silence
        fields = ["id", "rule", "entity", "severity", "starts_at", "ends_at", "recurrence", "repeat_until", "timezone",
                  "comment", "created_by", "created_at", "next_window"]
        read_only_fields = ["id", "created_by", "created_at", "next_window"]

    @extend_schema_field(SilenceWindowSerializer(allow_null=True))
    def get_next_window(self, silence: Silence) -> dict | None:
        from django.utils import timezone

        window = silence.window_next(timezone.now())
        return None if window is None else SilenceWindowSerializer({"starts_at": window[0], "ends_at": window[1]}).data

    def validate(self, attrs: dict) -> dict:
        from django.utils import timezone

        from monitoring.models import silence_params_check

        attrs.setdefault("starts_at", timezone.now())
        errors = silence_params_check(
            starts_at=attrs["starts_at"], ends_at=attrs["ends_at"], recurrence=attrs.get("recurrence") or "",
            repeat_until=attrs.get("repeat_until"), timezone_name=attrs.get("timezone") or "UTC",
        )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
