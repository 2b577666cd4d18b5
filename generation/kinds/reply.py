"""``reply``: a customer's message (+ optional history) -> ``n`` draft replies grounded in the
knowledge base, each citing the sources it used, with the intent of the top source and a
grounding score. Personal data in the message, the history and the context values is masked
before the job is stored (``masked_params``, applied by ``job_params_validate``); the context
variables (order number, customer name, ...) are never prompted and only fill ``{{Placeholder}}``
tokens afterwards, so a value that is personal data fills its placeholder with its type
(``[ORDER_ID]``): nothing personal is stored in the job or its drafts."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.generate import ModelNameField
from generation.privacy import params_mask

CHANNELS = ("email", "chat", "phone")
TONES = ("neutral", "friendly", "formal", "empathetic")


class ReplyTurnSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["customer", "agent"])
    content = serializers.CharField(max_length=settings.GENAI_REPLY_MAX_HISTORY_CHARS)


class ReplyParamsSerializer(serializers.Serializer):
    message = serializers.CharField(
        max_length=settings.GENAI_REPLY_MAX_MESSAGE_CHARS, help_text="The customer's message to answer."
    )
    history = ReplyTurnSerializer(
        many=True,
        required=False,
        default=list,
        max_length=settings.GENAI_REPLY_MAX_HISTORY,
        help_text="Earlier turns of the conversation, oldest first.",
    )
    channel = serializers.ChoiceField(
        choices=CHANNELS,
        default="chat",
        help_text="email: a salutation (by name when the context gives the customer's name), the reply, a sign-off with "
        "the company's name from the company profile; chat: greets by name when known, no sign-off; phone: the same, "
        "as said on a call.",
    )
    tone = serializers.ChoiceField(choices=TONES, default="neutral")
    context = serializers.DictField(
        child=serializers.CharField(max_length=settings.GENAI_REPLY_MAX_CONTEXT_VALUE_CHARS, allow_blank=False),
        required=False,
        default=dict,
        help_text='Placeholder values, e.g. {"Order Number": "A-123", "Customer Name": "Ann"}: they fill '
        "`{{Order Number}}` tokens of the reply (case-insensitive), winning over the company profile's values, and are "
        'never shown to the model; "Customer Name" (or "Name") also greets the customer.',
    )
    n = serializers.IntegerField(min_value=1, max_value=settings.GENAI_MAX_CANDIDATES, default=1)
    max_new_tokens = serializers.IntegerField(
        min_value=16,
        max_value=settings.GENAI_MAX_NEW_TOKENS,
        default=256,
        help_text="Tokens the model may write. With a retrieved source it writes only the reply's opening, capped at "
        f"{settings.GENAI_REPLY_OPENING_MAX_TOKENS} tokens (GENAI_REPLY_OPENING_MAX_TOKENS); the body is the source's.",
    )
    temperature = serializers.FloatField(
        min_value=0.0, max_value=2.0, default=0.0, help_text="0 means greedy; candidates after the first sample at 0.7 then."
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, required=False, allow_null=True, default=None)
    k = serializers.IntegerField(
        min_value=1, max_value=settings.GENAI_REPLY_MAX_SOURCES, default=3, help_text="Knowledge-base sources to retrieve."
    )
    model = ModelNameField(
        help_text='"base" for the base model, or a LoRA adapter ("name" or "name@3"); default: the adapter '
        "promoted for replies, else the base model."
    )

    def validate_context(self, value: dict) -> dict:
        if len(value) > settings.GENAI_REPLY_MAX_CONTEXT_KEYS:
            raise serializers.ValidationError(
                f"At most {settings.GENAI_REPLY_MAX_CONTEXT_KEYS} variables (GENAI_REPLY_MAX_CONTEXT_KEYS)."
            )
        limit = settings.GENAI_REPLY_MAX_CONTEXT_KEY_CHARS
        for key in value:
            if not key.strip() or len(key) > limit:
                raise serializers.ValidationError(f"Variable names must be 1 to {limit} characters: {key[:80]!r}.")
        return {key.strip(): text for key, text in value.items()}

    def validate(self, attrs: dict) -> dict:
        # Masked here too, so that callers who validate without job_params_validate (batch
        # drafting, evaluation) never prompt or store personal data either.
        return params_mask(attrs, paths=("message", "history[].content"))



kind_register(
    JobKind(
        name="reply",
        description="Draft replies to a customer's message, grounded in the knowledge base, with their sources.",
        params_serializer=ReplyParamsSerializer,
        queue="gpu",
        masked_params=("message", "history[].content", "context{}"),
        roles=frozenset({roles.AGENT, roles.ADMIN}),
    )
)
