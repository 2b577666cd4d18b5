"""``sentiment_score``: scores the news items that the current classifier has not scored yet, in
batches (each batch commits), then queues the alert rules' evaluation (monitoring's service, after
commit). Ingestion queues it after commit."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


class SentimentScoreParamsSerializer(serializers.Serializer):
    model = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default="",
        help_text='Classifier "name" or "name@3"; blank: GENAI_SENTIMENT_MODEL, else the promoted, else the newest.',
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=1024, default=settings.GENAI_SENTIMENT_BATCH)
    rescore = serializers.BooleanField(default=False, help_text="Score every item again, not only unscored ones.")
    evaluate = serializers.BooleanField(default=True, help_text="Queue the alert rules' evaluation afterwards.")

    def validate_model(self, value: str) -> str:
        from generation.selectors import sentiment_model_resolve

        value = value.strip()
        if value and sentiment_model_resolve(value) is None:
            raise serializers.ValidationError(f"No ready sentiment model version {value!r}.")
        return value


kind_register(
    JobKind(
        name="sentiment_score",
        description="Scores unscored news items with the sentiment classifier (label, probabilities, score), in batches.",
        params_serializer=SentimentScoreParamsSerializer,
        queue="cpu",
        roles=frozenset({roles.ANALYST, roles.ADMIN}),
    )
)
