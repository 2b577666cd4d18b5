"""``alert_summary``: the language model writes 2-4 sentences about the items behind a firing
alert, citing their ids as [#id]; a text that cites an id not behind the alert (or none) is
replaced by the extractive summary. Queued when an alert fires."""

from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


class AlertSummaryParamsSerializer(serializers.Serializer):
    alert_id = serializers.IntegerField(min_value=1)

    def validate_alert_id(self, value: int) -> int:
        from monitoring.models import Alert

        if not Alert.objects.filter(pk=value).exists():
            raise serializers.ValidationError(f"No alert {value}.")
        return value


kind_register(
    JobKind(
        name="alert_summary",
        description="Summarises the items behind a firing alert in 2-4 sentences citing their ids.",
        params_serializer=AlertSummaryParamsSerializer,
        queue="gpu",
        roles=frozenset({roles.ANALYST, roles.ADMIN}),
    )
)
