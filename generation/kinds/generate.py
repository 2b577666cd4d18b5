"""``generate``: a prompt or chat messages -> text from the configured causal LM (SmolLM2 by
default), with sampling controls, stop sequences, a seed and ``n`` candidates."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


def base_model_name() -> str:
    """The base LM's name (from its setting): ``smollm2`` or the model directory's name."""
    from pathlib import Path

    name = settings.GENAI_LM_MODEL
    return name if name == "smollm2" else Path(name).name.removesuffix(".gguf")


def model_names() -> list[str]:
    """Models a request may name: the base LM, then each ready LoRA adapter by name (its promoted
    or newest version) and by ``name@version``."""
    from generation.models import ModelVersion, ModelVersionStatus

    names = [base_model_name()]
    versions = ModelVersion.objects.filter(family="lm_adapter", status=ModelVersionStatus.READY).order_by("name", "-version")
    for name, version in versions.values_list("name", "version"):
        if name not in names:
            names.append(name)
        names.append(f"{name}@{version}")
    return names


def model_name_check(value: str | None) -> str | None:
    """A requested model: "base", the base LM's name, or a ready adapter ("name" or "name@3").
    Returns it unchanged; an unknown one is a ValidationError that lists the known names."""
    from generation.selectors import model_version_resolve

    if not value or value in ("base", base_model_name()):
        return value
    if model_version_resolve(family="lm_adapter", name=value) is None:
        known = model_names()
        shown = ", ".join(["base", *known[:20]]) + (" ..." if len(known) > 20 else "")
        raise serializers.ValidationError(
            f"Unknown model {value!r}; available: {shown} (GET /v1/models).", code="model_not_found"
        )
    return value


class ModelNameField(serializers.CharField):
    """``model`` of a text kind: the base model or a LoRA adapter by name (checked on the rows)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 128)
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            'A model from GET /v1/models: "base" (or the base model\'s name), or a LoRA adapter as "name" '
            '(its promoted, else newest version) or "name@3".',
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return model_name_check(super().to_internal_value(data))


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(max_length=settings.GENAI_MAX_PROMPT_CHARS, trim_whitespace=False)


class GenerateParamsSerializer(serializers.Serializer):
    prompt = serializers.CharField(
        required=False,
        max_length=settings.GENAI_MAX_PROMPT_CHARS,
        trim_whitespace=False,
        help_text="Raw text to continue. Give this or `messages`.",
    )
    messages = ChatMessageSerializer(
        many=True,
        required=False,
        max_length=settings.GENAI_MAX_MESSAGES,
        min_length=1,
        help_text="Chat turns, rendered with the model's chat template. Give this or `prompt`.",
    )
    model = ModelNameField()
    max_new_tokens = serializers.IntegerField(min_value=1, max_value=settings.GENAI_MAX_NEW_TOKENS, default=128)
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, default=0.7, help_text="0 means greedy.")
    top_p = serializers.FloatField(min_value=0.01, max_value=1.0, default=0.95)
    top_k = serializers.IntegerField(min_value=0, max_value=1000, default=50, help_text="0 disables top-k.")
    repetition_penalty = serializers.FloatField(min_value=1.0, max_value=2.0, default=1.1)
    stop = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=settings.GENAI_MAX_STOP_CHARS, trim_whitespace=False),
        max_length=settings.GENAI_MAX_STOP_SEQUENCES,
        default=list,
        help_text="Generation of a candidate ends at the first of these strings (not included).",
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, required=False, allow_null=True, default=None)
    n = serializers.IntegerField(min_value=1, max_value=settings.GENAI_MAX_CANDIDATES, default=1)
    response_format = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text='`{"type": "json_object"}` (any JSON object) or `{"type": "json_schema", "json_schema": '
        '{"name": ..., "schema": {...}}}`: constrained decoding keeps every candidate valid JSON for the schema '
        '(unless cut short by `max_new_tokens`: finish reason `length`). `{"type": "text"}` or null: free text.',
    )

    def validate_response_format(self, value):
        from generation.structured import ResponseFormatError, response_format_grammar

        try:
            grammar = response_format_grammar(value)
        except ResponseFormatError as exc:
            raise serializers.ValidationError(str(exc), code="invalid_schema") from exc
        return value if grammar is not None else None  # {"type": "text"}: free text, as if absent

    def validate(self, attrs: dict) -> dict:
        has_prompt, has_messages = "prompt" in attrs, "messages" in attrs
        if has_prompt == has_messages:
            raise serializers.ValidationError({"prompt": ["Give exactly one of `prompt` or `messages`."]})
        if attrs.get("response_format") is not None and attrs.get("stop"):
            raise serializers.ValidationError(
                {"stop": ["Stop sequences cannot be combined with a JSON `response_format`: they would cut the JSON."]}
            )
        if attrs.get("model") in (None, "", "base", base_model_name()):
            # Stored as the alias, not the name: a worker resolves "base" to its own base model
            # (a web process and a worker may name the same base model differently).
            attrs["model"] = "base"
        if has_messages:
            attrs["messages"] = [dict(m) for m in attrs["messages"]]
        from generation.lm import prompt_token_count

        field = "messages" if has_messages else "prompt"
        tokens = prompt_token_count(prompt=attrs.get("prompt"), messages=attrs.get("messages"))
        limit = settings.GENAI_MAX_PROMPT_TOKENS
        if tokens > limit:
            raise serializers.ValidationError(
                {field: [f"The prompt is {tokens} tokens; the limit is {limit} (GENAI_MAX_PROMPT_TOKENS)."]}
            )
        return attrs


kind_register(
    JobKind(
        name="generate",
        description="Text from the service's language model for a prompt or chat messages.",
        params_serializer=GenerateParamsSerializer,
        queue="gpu",
        masked_params=("prompt", "messages[].content"),
        roles=frozenset({roles.AGENT, roles.MARKETER, roles.ANALYST, roles.ADMIN}),
    )
)
