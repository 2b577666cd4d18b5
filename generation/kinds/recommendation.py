"""``recommendation``: a shopper's recent interactions + candidate products -> the products ranked by
similarity to the shopper's interests (MiniLM embeddings), the best ``top_k`` each with a short
personalised blurb saying why it fits, checked like copy (nothing the product's attributes do
not say)."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.copy import TONES, AttributesField
from generation.kinds.generate import ModelNameField

INTERACTION_TYPES = ("viewed", "clicked", "reviewed", "shared", "purchased", "liked")


class InteractionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=INTERACTION_TYPES, default="viewed")
    title = serializers.CharField(max_length=300)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list, max_length=settings.GENAI_COPY_MAX_LIST_ITEMS
    )
    description = serializers.CharField(
        max_length=settings.GENAI_RECOMMEND_MAX_TEXT_CHARS, required=False, default="", allow_blank=True
    )
    text = serializers.CharField(
        max_length=settings.GENAI_RECOMMEND_MAX_TEXT_CHARS, required=False, default="", allow_blank=True,
        help_text="The shopper's own words (a review, a share message).",
    )


class ProductSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=128, required=False, default="", allow_blank=True)
    attributes = AttributesField()


class RecommendationParamsSerializer(serializers.Serializer):
    model = ModelNameField(
        help_text='Default: the promoted LoRA adapter for copy, else the base model; "base" forces the base '
        'model; or an adapter as "name" / "name@3" (GET /v1/models).'
    )
    interactions = InteractionSerializer(
        many=True,
        allow_empty=False,
        max_length=settings.GENAI_RECOMMEND_MAX_INTERACTIONS,
        help_text="The shopper's recent interactions, oldest first (later ones weigh more).",
    )
    products = ProductSerializer(
        many=True, allow_empty=False, max_length=settings.GENAI_RECOMMEND_MAX_PRODUCTS, help_text="Candidate products."
    )
    top_k = serializers.IntegerField(
        min_value=1, max_value=settings.GENAI_RECOMMEND_MAX_BLURBS, default=3,
        help_text="How many of the best-ranked products get a blurb (GENAI_RECOMMEND_MAX_BLURBS).",
    )
    tone = serializers.ChoiceField(choices=TONES, default="neutral")
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, required=False, allow_null=True, default=None)

    def validate_products(self, value: list) -> list:
        ids = [p["id"] for p in value if p["id"]]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Product ids must differ.")
        return [{"id": p["id"] or str(i + 1), "attributes": p["attributes"]} for i, p in enumerate(value)]


kind_register(
    JobKind(
        name="recommendation",
        description="Rank candidate products by similarity to a shopper's recent interactions, with a short "
        "personalised blurb per product that claims nothing the product's attributes do not say.",
        params_serializer=RecommendationParamsSerializer,
        queue="gpu",
        masked_params=(
            "interactions[].title", "interactions[].description", "interactions[].text", "products[].attributes{}"
        ),
        roles=frozenset({roles.MARKETER, roles.ADMIN}),
    )
)
