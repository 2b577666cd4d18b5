"""``sample``: n new texts from the latent GAN's generator (``source="gan"``, the default) or from
the sentence VAE's N(0, I) prior (``source="prior"``), each with the critic's realism score."""

from django.conf import settings
from rest_framework import serializers

from generation.kinds import JobKind, kind_register
from generation.kinds.variants import (
    DECODINGS,
    GENMODEL_ROLES,
    domain_field,
    genmodel_check,
    model_field,
)


class SampleParamsSerializer(serializers.Serializer):
    n = serializers.IntegerField(min_value=1, max_value=settings.GENAI_GENMODEL_MAX_SAMPLES, default=10)
    source = serializers.ChoiceField(
        choices=("gan", "prior"), default="gan", help_text="gan: the GAN's generator; prior: z ~ N(0, I)."
    )
    decoding = serializers.ChoiceField(choices=DECODINGS, default="greedy")
    temperature = serializers.FloatField(min_value=0.05, max_value=2.0, default=1.0, help_text="For decoding=sample.")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True, default=None)
    domain = domain_field()
    model = model_field()

    def validate(self, attrs: dict) -> dict:
        try:
            attrs["model"] = genmodel_check(attrs.get("model", ""), need_gan=attrs["source"] == "gan", domain=attrs["domain"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"model": exc.detail}) from None
        return attrs


kind_register(
    JobKind(
        name="sample",
        description="New texts from the latent GAN or the sentence VAE's prior.",
        params_serializer=SampleParamsSerializer,
        queue="gpu",
        roles=GENMODEL_ROLES,
    )
)
