"""``interpolate``: two texts -> ``steps`` sentences decoded from evenly spaced points on the path
between their posterior means in the sentence VAE's latent space (both ends included)."""

from django.conf import settings
from rest_framework import serializers

from generation.kinds import JobKind, kind_register
from generation.kinds.variants import (
    GENMODEL_ROLES,
    domain_field,
    genmodel_check,
    model_field,
    text_field,
)


class InterpolateParamsSerializer(serializers.Serializer):
    text_a = text_field("Where the path starts.")
    text_b = text_field("Where the path ends.")
    steps = serializers.IntegerField(
        min_value=2, max_value=settings.GENAI_GENMODEL_MAX_INTERPOLATION_STEPS, default=5,
        help_text="Sentences along the path, both ends included.",
    )
    path = serializers.ChoiceField(
        choices=("linear", "slerp"), default="linear", help_text="Straight line, or spherical (keeps the latent norm)."
    )
    domain = domain_field()
    model = model_field()

    def validate(self, attrs: dict) -> dict:
        try:
            attrs["model"] = genmodel_check(attrs.get("model", ""), domain=attrs["domain"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"model": exc.detail}) from None
        return attrs


kind_register(
    JobKind(
        name="interpolate",
        description="Sentences along the latent path between two texts (sentence VAE).",
        params_serializer=InterpolateParamsSerializer,
        queue="gpu",
        masked_params=("text_a", "text_b"),
        roles=GENMODEL_ROLES,
    )
)
