"""Request and response shapes of the OpenAI-compatible endpoints (/v1).

The request serializers check types and OpenAI's own rules (unknown and unsupported
parameters); ranges and limits are the ``generate`` kind's (``GenerateParamsSerializer``), checked
by ``job_create`` like every other job. The response serializers document the shapes for OpenAPI.
"""

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.kinds.generate import ModelNameField

# OpenAI parameters this service does not implement: accepted only with the value that means
# "not used" (so clients that send defaults keep working), refused otherwise.
UNSUPPORTED_PARAMS: dict[str, tuple] = {
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
    "logprobs": (None, False, 0),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "echo": (None, False),
    "best_of": (None, 1),
    "suffix": (None, ""),
}
# OpenAI parameters that change nothing here (bookkeeping on OpenAI's side): accepted, ignored.
IGNORED_PARAMS = frozenset(
    {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "prompt_cache_key", "safety_identifier"}
)


def _same(value, unused) -> bool:
    """JSON equality: ``false`` is not ``0``, ``0.0`` is ``0``."""
    if isinstance(value, bool) or isinstance(unused, bool) or value is None or unused is None:
        return value is unused
    if isinstance(value, (int, float)) and isinstance(unused, (int, float)):
        return value == unused
    return type(value) is type(unused) and value == unused


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
class StopField(serializers.Field):
    """A string or a list of strings; always a list inside."""

    default_error_messages = {"invalid": "Expected a string or a list of strings."}

    def to_internal_value(self, data):
        if isinstance(data, str):
            return [data]
        if isinstance(data, list) and all(isinstance(item, str) for item in data):
            return data
        self.fail("invalid")

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
                    "required": ["type", "text"],
                },
            },
        ]
    }
)
class MessageContentField(serializers.Field):
    """A string, or a list of text parts (joined with newlines); images and audio are refused."""

    default_error_messages = {"invalid": 'Expected a string or a list of {{"type": "text", "text": ...}} parts.'}

    def to_internal_value(self, data):
        if isinstance(data, str):
            return data
        if (
            isinstance(data, list)
            and data
            and all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in data)
        ):
            return "\n".join(part["text"] for part in data)
        self.fail("invalid")

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "properties": {"type": {"type": "string", "enum": ["text", "json_object"]}},
             "required": ["type"]},
            {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["json_schema"]},
                    "json_schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "maxLength": 64},
                            "description": {"type": "string"},
                            "schema": {"type": "object", "additionalProperties": True},
                            "strict": {"type": "boolean", "nullable": True},
                        },
                        "required": ["name"],
                    },
                },
                "required": ["type", "json_schema"],
            },
        ]
    }
)
class ResponseFormatField(serializers.JSONField):
    """OpenAI's ``response_format``; checked (and compiled to a grammar) by the ``generate`` kind."""


class ChatMessageInputSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="system, developer (treated as system), user or assistant.")
    content = MessageContentField()
    name = serializers.CharField(required=False, help_text="Accepted and ignored.")


class StreamOptionsSerializer(serializers.Serializer):
    include_usage = serializers.BooleanField(
        required=False, default=False, help_text="Send a last chunk with `usage` (and `choices: []`)."
    )


class _CompletionInputSerializer(serializers.Serializer):
    """What both endpoints take. Absent (or null) options take the service's defaults, as in
    POST /api/jobs/ (GET /api/kinds/ lists them), not OpenAI's."""

    model = ModelNameField(help_text='A model from GET /v1/models: the base model (the default, or "base") or a LoRA adapter.')
    max_tokens = serializers.IntegerField(
        required=False, allow_null=True, help_text="Most tokens to generate per choice (`max_new_tokens`)."
    )
    temperature = serializers.FloatField(required=False, allow_null=True, help_text="0 to 2; 0 means greedy.")
    top_p = serializers.FloatField(required=False, allow_null=True)
    top_k = serializers.IntegerField(required=False, allow_null=True, help_text="Not in OpenAI's API; 0 disables it.")
    repetition_penalty = serializers.FloatField(required=False, allow_null=True, help_text="Not in OpenAI's API.")
    stop = StopField(required=False, allow_null=True, help_text="Up to GENAI_MAX_STOP_SEQUENCES strings.")
    seed = serializers.IntegerField(required=False, allow_null=True)
    n = serializers.IntegerField(required=False, allow_null=True, help_text="Choices to generate (one job).")
    stream = serializers.BooleanField(required=False, default=False, help_text="Answer with Server-Sent Events.")
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    response_format = ResponseFormatField(
        required=False,
        allow_null=True,
        help_text='`{"type": "json_object"}`: the text is a JSON object; `{"type": "json_schema", "json_schema": '
        '{"name": ..., "schema": {...}}}`: the text is JSON valid for the schema (constrained decoding: every token '
        "is picked among those the schema allows; `strict` is accepted, and always on). Only a choice cut short by "
        '`max_tokens` (`finish_reason: "length"`) can end before its JSON does. Not with `stop`. An unusable schema '
        'is a 400 naming `response_format`. `{"type": "text"}` or absent: free text.',
    )

    def validate(self, attrs: dict) -> dict:
        for name, value in self.initial_data.items():
            if name in self.fields or name in IGNORED_PARAMS:
                continue
            if name not in UNSUPPORTED_PARAMS:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unrecognized request argument.", code="unknown_parameter")]}
                )
            if not any(_same(value, unused) for unused in UNSUPPORTED_PARAMS[name]):
                allowed = " or ".join(json.dumps(unused) for unused in UNSUPPORTED_PARAMS[name])
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail(
                        f"Not supported by this service; send {allowed} or leave it out.", code="unsupported_value"
                    )]}
                )
        return attrs


class ChatCompletionInputSerializer(_CompletionInputSerializer):
    messages = ChatMessageInputSerializer(many=True, help_text="The conversation, oldest first.")
    max_completion_tokens = serializers.IntegerField(
        required=False, allow_null=True, help_text="Same as `max_tokens` (OpenAI's newer name); wins over it."
    )


class CompletionInputSerializer(_CompletionInputSerializer):
    prompt = serializers.CharField(trim_whitespace=False, allow_blank=True, help_text="Raw text to continue.")


# --- responses (documentation) --------------------------------------------------------------

FINISH_REASON = serializers.CharField(
    help_text="`stop`: the model ended or hit a stop string; `length`: cut short by `max_tokens` "
    "(or by the job's time limit or a cancel); `content_filter`: the output safety filter withheld the text.",
)


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField(help_text="Over all choices.")
    total_tokens = serializers.IntegerField()


class AssistantMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["assistant"])
    content = serializers.CharField()


class _ChoiceOutputSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    finish_reason = FINISH_REASON
    logprobs = serializers.JSONField(allow_null=True, help_text="Always null.")


class ChatCompletionChoiceSerializer(_ChoiceOutputSerializer):
    message = AssistantMessageSerializer()


class CompletionChoiceSerializer(_ChoiceOutputSerializer):
    text = serializers.CharField()


class _CompletionOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="`chatcmpl-` or `cmpl-` and the job's id in hex (the `X-Job-Id` header).")
    created = serializers.IntegerField(help_text="Unix time the job was created.")
    model = serializers.CharField()
    usage = UsageSerializer()


class ChatCompletionSerializer(_CompletionOutputSerializer):
    object = serializers.ChoiceField(choices=["chat.completion"])
    choices = ChatCompletionChoiceSerializer(many=True)


class CompletionSerializer(_CompletionOutputSerializer):
    object = serializers.ChoiceField(choices=["text_completion"])
    choices = CompletionChoiceSerializer(many=True)


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=["model"])
    created = serializers.IntegerField(help_text="Unix time this web process started serving it.")
    owned_by = serializers.CharField()


class ModelListSerializer(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = ModelSerializer(many=True)


class ErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.ChoiceField(
        choices=["invalid_request_error", "authentication_error", "permission_error", "rate_limit_error", "server_error"]
    )
    param = serializers.CharField(allow_null=True, help_text="The request parameter at fault, in OpenAI's names.")
    code = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
