"""``intent_train``: train the intent classifier of reply jobs (MiniLM embeddings + a head, or
MiniLM's top layers fine-tuned with the head) on labelled CSVs, with a stratified validation
split and early stopping, and a logistic regression on the frozen embeddings on the same split
as its baseline; registers a ``ModelVersion(family="intent", purpose="reply")`` with both's
validation accuracy and macro-F1."""

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
    # Without a value, epochs, batch_size, lr, patience and hidden take the defaults of the kind of
    # training (frozen embeddings, or encoder_layers fine-tuned): workers.runners.intent.
    epochs = serializers.IntegerField(min_value=1, max_value=settings.GENAI_INTENT_MAX_EPOCHS, required=False)
    batch_size = serializers.IntegerField(min_value=8, max_value=4096, required=False)
    lr = serializers.FloatField(min_value=1e-6, max_value=1.0, required=False, help_text="The head's learning rate.")
    hidden = serializers.IntegerField(min_value=0, max_value=4096, required=False, help_text="0: a linear softmax head.")
    dropout = serializers.FloatField(min_value=0.0, max_value=0.9, default=0.1)
    residual = serializers.BooleanField(
        required=False, help_text="hidden > 0: an MLP beside a linear path started from the logistic-regression "
        "baseline (the head starts as the baseline; needs baseline).",
    )
    patience = serializers.IntegerField(min_value=1, max_value=100, required=False, help_text="Epochs without a better validation macro-F1.")
    validation_fraction = serializers.FloatField(min_value=0.01, max_value=0.5, default=0.1)
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)
    encoder_layers = serializers.IntegerField(
        min_value=0, max_value=12, required=False,
        help_text="The encoder's top layers fine-tuned with the head (default: all; 0: the head reads frozen embeddings).",
    )
    encoder_lr = serializers.FloatField(min_value=1e-7, max_value=1e-2, required=False, help_text="The fine-tuned layers' learning rate.")
    baseline = serializers.BooleanField(
        default=True, help_text="Fit a logistic regression on the frozen embeddings on the same split (reported, and stored for intent_evaluate).",
    )

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
