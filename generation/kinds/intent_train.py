"""``intent_train``: train the intent classifier of reply jobs (MiniLM embeddings + an MLP head)
on labelled CSVs, with a stratified validation split and early stopping; registers a
``ModelVersion(family="intent", purpose="reply")`` with its validation accuracy and macro-F1."""

from pathlib import Path

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


def data_path_check(path: str) -> str:
    """A file on the worker that lies under one of GENAI_FINETUNE_DATA_DIRS."""
    resolved = Path(path).expanduser().resolve()
    roots = [Path(d).expanduser().resolve() for d in settings.GENAI_FINETUNE_DATA_DIRS]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise serializers.ValidationError(
            f"{path!r} is not under a data folder (GENAI_FINETUNE_DATA_DIRS: {', '.join(map(str, roots))})."
        )
    if not resolved.is_file():
        raise serializers.ValidationError(f"{path!r} is not a file.")
    return str(resolved)


class IntentDatasetSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=1000, help_text="A CSV with a header row, under GENAI_FINETUNE_DATA_DIRS.")
    text_col = serializers.CharField(max_length=100, default="text")
    label_col = serializers.CharField(max_length=100, default="category")

    def validate_path(self, value: str) -> str:
        return data_path_check(value)


class IntentTrainParamsSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100, default="intent", help_text="The model version's name.")
    datasets = IntentDatasetSerializer(
        many=True, required=False, max_length=10, help_text="Default: GENAI_INTENT_DATASETS (Banking77 + Bitext)."
    )
    epochs = serializers.IntegerField(min_value=1, max_value=settings.GENAI_INTENT_MAX_EPOCHS, default=60)
    batch_size = serializers.IntegerField(min_value=8, max_value=4096, default=128)
    lr = serializers.FloatField(min_value=1e-6, max_value=1.0, default=2e-3)
    hidden = serializers.IntegerField(min_value=0, max_value=4096, default=512, help_text="0: a linear softmax head.")
    dropout = serializers.FloatField(min_value=0.0, max_value=0.9, default=0.1)
    patience = serializers.IntegerField(min_value=1, max_value=100, default=4, help_text="Epochs without a better validation macro-F1.")
    validation_fraction = serializers.FloatField(min_value=0.01, max_value=0.5, default=0.1)
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)

    def validate(self, attrs: dict) -> dict:
        if "datasets" in attrs:
            attrs["datasets"] = [dict(d) for d in attrs["datasets"]]
        return attrs


kind_register(
    JobKind(
        name="intent_train",
        description="Train the intent classifier of replies on labelled CSVs; registers an intent model version.",
        params_serializer=IntentTrainParamsSerializer,
        queue="train",
        roles=frozenset({roles.ANALYST, roles.ADMIN}),
    )
)
