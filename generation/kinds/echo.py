"""``echo``: a diagnostic kind with no model. It returns its text, optionally after a delay with
progress and heartbeats; the pipeline benchmark and the fault-tolerance tests use it."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


class EchoParamsSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=settings.GENAI_ECHO_MAX_CHARS, allow_blank=True, trim_whitespace=False)
    delay_seconds = serializers.FloatField(min_value=0.0, max_value=settings.GENAI_ECHO_MAX_DELAY_SECONDS, default=0.0)


kind_register(
    JobKind(
        name="echo",
        description="Diagnostics: returns `text` after `delay_seconds`; no model.",
        params_serializer=EchoParamsSerializer,
        queue="cpu",
        masked_params=("text",),
        roles=frozenset({roles.ADMIN}),
    )
)
