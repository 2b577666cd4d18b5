"""``knowledge_embed``: embeds the knowledge rows whose text changed since they were embedded
(or that were never embedded, or were embedded by another model), in batches, with progress.
Imports queue it after they commit; run it by hand with ``force`` to re-embed everything."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


class KnowledgeEmbedParamsSerializer(serializers.Serializer):
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=["docs", "conversations"]),
        min_length=1,
        max_length=2,
        default=lambda: ["conversations", "docs"],
        help_text="Which tables to embed.",
    )
    force = serializers.BooleanField(default=False, help_text="Re-embed every active row, not only pending ones.")
    batch_size = serializers.IntegerField(
        min_value=1, max_value=1024, default=settings.GENAI_KB_EMBED_BATCH, help_text="Rows per forward pass and commit."
    )

    def validate_kinds(self, value: list[str]) -> list[str]:
        return sorted(set(value))


kind_register(
    JobKind(
        name="knowledge_embed",
        description="Embeds new and changed knowledge docs and conversations (all-MiniLM-L6-v2) for retrieval.",
        params_serializer=KnowledgeEmbedParamsSerializer,
        queue="cpu",
        roles=frozenset({roles.AGENT, roles.ADMIN}),
    )
)
