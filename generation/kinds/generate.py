"""``generate``: a prompt or chat messages -> text from the configured causal LM (SmolLM2 by
default), with sampling controls, stop sequences, a seed and ``n`` candidates."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


def model_names() -> list[str]:
    """Models a request may name: the base LM (by the name of its setting). LoRA adapters join
    this list when the fine-tuning work lands."""
    from pathlib import Path

    name = settings.GENAI_LM_MODEL
    return [name if name == "smollm2" else Path(name).name.removesuffix(".gguf")]


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
    model = serializers.CharField(
        required=False, max_length=128, help_text="A model from GET /v1/models; the base model by default."
    )
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

    def validate(self, attrs: dict) -> dict:
        has_prompt, has_messages = "prompt" in attrs, "messages" in attrs
        if has_prompt == has_messages:
            raise serializers.ValidationError({"prompt": ["Give exactly one of `prompt` or `messages`."]})
        known = model_names()
        attrs["model"] = attrs.get("model") or known[0]
        if attrs["model"] not in known:
            raise serializers.ValidationError({"model": [f"Unknown model {attrs['model']!r}; available: {', '.join(known)}."]})
        if has_messages:
            attrs["messages"] = [dict(m) for m in attrs["messages"]]
        from workers.runtime.models import prompt_token_count

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
        runner="workers.runtime.text.generate_run",
        roles=frozenset({roles.AGENT, roles.MARKETER, roles.ANALYST, roles.ADMIN}),
    )
)
