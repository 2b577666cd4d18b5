"""``copy``: product attributes -> ``n`` candidate descriptions per audience segment, each with a
title, a description, bullet points built from the attributes, and the checker's marks
(``generation.text.copycheck``). Also ``brand_example_embed``, the cpu job that embeds stored brand
examples (their vectors choose the few-shot examples of a copy prompt)."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.generate import ModelNameField

TONES = ("neutral", "playful", "premium", "technical")
LENGTHS = ("short", "medium", "long")


class AttributesField(serializers.DictField):
    """Product attributes: a JSON object of 1 to GENAI_COPY_MAX_ATTRIBUTES keys whose values are
    text, numbers or lists of text (sizes, features). Empty values are dropped; an object left
    empty is an error."""

    default_error_messages = {
        "empty": "Give at least one attribute (name, brand, category, colour, material, price, sizes, features, "
        "audience, or any key of your own).",
    }

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        limit_keys = settings.GENAI_COPY_MAX_ATTRIBUTES
        key_chars, value_chars = settings.GENAI_COPY_MAX_KEY_CHARS, settings.GENAI_COPY_MAX_VALUE_CHARS
        items_limit = settings.GENAI_COPY_MAX_LIST_ITEMS
        # Counted after empty values are dropped: a wide catalogue CSV leaves most cells empty.
        if sum(1 for v in data.values() if v is not None and v != [] and str(v).strip()) > limit_keys:
            raise serializers.ValidationError(f"At most {limit_keys} attributes (GENAI_COPY_MAX_ATTRIBUTES).")
        cleaned: dict = {}
        for key, value in data.items():
            key = str(key).strip()
            if not key or len(key) > key_chars:
                raise serializers.ValidationError(f"Attribute names must be 1 to {key_chars} characters: {key[:80]!r}.")
            if isinstance(value, bool) or isinstance(value, dict):
                raise serializers.ValidationError(f"{key}: give text, a number or a list of text.")
            if isinstance(value, (int, float)):
                value = str(value)
            if isinstance(value, list):
                if len(value) > items_limit:
                    raise serializers.ValidationError(f"{key}: at most {items_limit} items (GENAI_COPY_MAX_LIST_ITEMS).")
                items = []
                for item in value:
                    if isinstance(item, (dict, list, bool)) or item is None:
                        raise serializers.ValidationError(f"{key}: list items must be text or numbers.")
                    item = str(item).strip()
                    if len(item) > value_chars:
                        raise serializers.ValidationError(f"{key}: items of at most {value_chars} characters.")
                    if item:
                        items.append(item)
                if items:
                    cleaned[key] = items
                continue
            if value is None:
                continue
            value = str(value).strip()
            if len(value) > value_chars:
                raise serializers.ValidationError(
                    f"{key}: at most {value_chars} characters (GENAI_COPY_MAX_VALUE_CHARS)."
                )
            if value:
                cleaned[key] = value
        if not cleaned:
            self.fail("empty")
        return cleaned


class SegmentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text='e.g. "students"')
    description = serializers.CharField(
        max_length=settings.GENAI_COPY_MAX_SEGMENT_CHARS, required=False, default="", allow_blank=True,
        help_text='e.g. "on a budget, carry a laptop to lectures"',
    )

    def to_internal_value(self, data):
        if isinstance(data, str):  # "students" is {"name": "students"}
            data = {"name": data}
        return super().to_internal_value(data)


class CopyParamsSerializer(serializers.Serializer):
    model = ModelNameField(
        help_text='Default: the promoted LoRA adapter for copy, else the base model; "base" forces the base '
        'model; or an adapter as "name" / "name@3" (GET /v1/models).'
    )
    attributes = AttributesField(
        help_text='The product: {"name": ..., "brand": ..., "category": ..., "colour": ..., "material": ..., '
        '"price": ..., "sizes": [...], "features": [...], "audience": ..., any other key}.'
    )
    tone = serializers.ChoiceField(choices=TONES, default="neutral")
    length = serializers.ChoiceField(choices=LENGTHS, default="medium")
    n = serializers.IntegerField(
        min_value=1, max_value=settings.GENAI_MAX_CANDIDATES, default=1, help_text="Candidates per segment."
    )
    segments = SegmentSerializer(
        many=True,
        required=False,
        default=list,
        max_length=settings.GENAI_COPY_MAX_SEGMENTS,
        help_text="Audience segments for personalised copy: each gets its own n candidates. Empty: one general set.",
    )
    collection = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True,
        help_text="The brand's collection whose stored examples set the voice (default: any of the brand's).",
    )
    examples = serializers.IntegerField(
        min_value=0, max_value=5, default=settings.GENAI_COPY_PROMPT_EXAMPLES,
        help_text="Stored brand examples shown to the model as style examples (the most similar first).",
    )
    max_regenerations = serializers.IntegerField(
        min_value=0, max_value=settings.GENAI_COPY_MAX_REGENERATIONS, default=settings.GENAI_COPY_MAX_REGENERATIONS,
        help_text="Extra tries for a candidate whose description fails the checks (GENAI_COPY_MAX_REGENERATIONS).",
    )
    temperature = serializers.FloatField(
        min_value=0.0, max_value=2.0, default=0.0, help_text="0: the first candidate greedy, the others sampled at 0.7."
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, required=False, allow_null=True, default=None)

    def validate_segments(self, value: list) -> list:
        names = [s["name"].strip().lower() for s in value]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("Segment names must differ.")
        return [{"name": s["name"].strip(), "description": s.get("description", "").strip()} for s in value]


class BrandExampleEmbedParamsSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False, help_text="Re-embed every active example, not only pending ones.")


kind_register(
    JobKind(
        name="copy",
        description="Product copy from attributes: title, description and bullet points per candidate, checked "
        "against the attributes (every one stated, nothing invented), per audience segment, in a brand's voice.",
        params_serializer=CopyParamsSerializer,
        queue="gpu",
        masked_params=("attributes{}", "segments[].description"),
        roles=frozenset({roles.MARKETER, roles.ADMIN}),
    )
)

kind_register(
    JobKind(
        name="brand_example_embed",
        description="Embeds new and changed brand examples (all-MiniLM-L6-v2) for choosing few-shot examples.",
        params_serializer=BrandExampleEmbedParamsSerializer,
        queue="cpu",
        roles=frozenset({roles.MARKETER, roles.ADMIN}),
    )
)
