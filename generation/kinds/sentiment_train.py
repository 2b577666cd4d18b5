"""``sentiment_train`` (train queue): fine-tunes all-MiniLM-L6-v2 (or all-mpnet-base-v2, SmolLM2-135M: ``base``) with a classification head on a
labelled CSV (by default the shipped finance tweets). A stratified test split is held out and never
trained on; a validation split drives early stopping; loss curves go to the job's metrics; the
result is a ``sentiment`` ModelVersion with validation and test metrics.

Options, each reported on validation against plain training: ``adversarial`` (FGM on the token
embeddings), ``ensemble`` (the k best checkpoints averaged) and ``augment_per_class`` (synthetic
examples per class from the VAE/GAN helper); ``seeds`` trains k runs and averages them."""

from pathlib import Path

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register


class SentimentTrainParamsSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100, default="finsent", help_text="The model version's name.")
    csv = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="",
        help_text="A CSV on the workers, under GENAI_SENTIMENT_DATA_DIRS; blank: GENAI_SENTIMENT_TRAIN_CSV.",
    )
    base = serializers.ChoiceField(
        choices=["all-minilm-l6-v2", "all-mpnet-base-v2", "smollm2"], required=False, allow_blank=True, default="",
        help_text="The weights training starts from: all-minilm-l6-v2 (22M parameters, fast), all-mpnet-base-v2 "
                  "(110M, a stronger sentence encoder: 6 points more held-out accuracy on finance tweets, ~5x slower to "
                  "train and score) or smollm2 (the 135M decoder the service generates with, used as "
                  "an encoder); blank: GENAI_SENTIMENT_BASE_MODEL.",
    )
    extra_train_csv = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="",
        help_text="More labelled rows (text,label with label names) added to the training split only, so "
                  "validation and the held-out test stay csv's: e.g. data/finance_news/train.csv, the team's "
                  "newswire sentences. Under GENAI_SENTIMENT_DATA_DIRS.",
    )
    text_col = serializers.CharField(max_length=100, default="text")
    label_col = serializers.CharField(max_length=100, default="label")
    label_map = serializers.CharField(max_length=500, default="0=negative,1=positive,2=neutral")
    max_rows = serializers.IntegerField(min_value=0, default=0, help_text="Use a random subset of N rows (0: all).")
    test_fraction = serializers.FloatField(min_value=0.0, max_value=0.5, default=0.15)
    validation_fraction = serializers.FloatField(min_value=0.01, max_value=0.5, default=0.1)
    epochs = serializers.IntegerField(min_value=1, max_value=settings.GENAI_SENTIMENT_MAX_EPOCHS, default=2)
    batch_size = serializers.IntegerField(min_value=1, max_value=256, default=32)
    lr = serializers.FloatField(min_value=1e-7, max_value=1e-2, default=1e-4)
    head_lr = serializers.FloatField(min_value=1e-7, max_value=1e-1, default=1e-3, help_text="Learning rate of the new head.")
    max_len = serializers.IntegerField(min_value=8, max_value=512, default=settings.GENAI_SENTIMENT_MAX_LEN)
    evals_per_epoch = serializers.IntegerField(min_value=1, max_value=20, default=2)
    patience = serializers.IntegerField(min_value=1, max_value=50, default=3)
    max_steps = serializers.IntegerField(min_value=0, default=0, help_text="Stop after N optimizer steps (0: no limit).")
    train_layers = serializers.IntegerField(
        min_value=-1, max_value=48, required=False, allow_null=True, default=None,
        help_text="Fine-tune only the top N encoder layers and the head (0: the head only; the frozen layers' token "
                  "states are computed once and cached on disk, and a logistic regression on the frozen encoder is "
                  "reported as the baseline); -1: the whole model; blank: the base's default "
                  "(GENAI_SENTIMENT_TRAIN_LAYERS: -1, the whole model).",
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    adversarial = serializers.BooleanField(default=False, help_text="FGM perturbation of the token embeddings.")
    fgm_epsilon = serializers.FloatField(min_value=0.0, max_value=10.0, default=1.0)
    ensemble = serializers.IntegerField(
        min_value=1, max_value=5, default=1, help_text="Average the k best checkpoints (kept if it beats the best one on validation)."
    )
    seeds = serializers.IntegerField(
        min_value=1, max_value=5, default=1,
        help_text="Train k runs with seeds seed..seed+k-1 and average their kept checkpoints (kept if it beats the "
                  "best single checkpoint on validation); k times the training time.",
    )
    augment_per_class = serializers.IntegerField(
        min_value=0, max_value=5000, default=0, help_text="Synthetic training examples per class from the VAE/GAN."
    )
    promote_if_better = serializers.BooleanField(
        default=False,
        help_text="Promote the new version (it then scores the news) when no sentiment model is promoted yet, or "
                  "when it beats the promoted one's validation macro-F1 on the same split (same data, seed and "
                  "fractions); the owner needs the reviewer or admin role.",
    )
    evaluate_initial = serializers.BooleanField(default=True, help_text="Validate the untrained model first (the curve's step 0).")
    compare_plain = serializers.BooleanField(
        default=True, help_text="With adversarial or augment: also train without them, same budget, and report both."
    )

    def validate_extra_train_csv(self, value: str) -> str:
        return self.validate_csv(value)

    def validate_csv(self, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        path = Path(value).expanduser().resolve()
        roots = [Path(root).expanduser().resolve() for root in settings.GENAI_SENTIMENT_DATA_DIRS]
        if not any(path.is_relative_to(root) for root in roots):
            raise serializers.ValidationError("The file must lie under GENAI_SENTIMENT_DATA_DIRS.")
        if path.suffix.lower() != ".csv" or not path.is_file():
            raise serializers.ValidationError(f"No CSV file at {value!r}.")
        return str(path)

    def validate_label_map(self, value: str) -> str:
        from generation.sentiment_labels import DatasetError, label_map_parse

        try:
            label_map_parse(value)
        except DatasetError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


kind_register(
    JobKind(
        name="sentiment_train",
        description="Fine-tunes the finance sentiment classifier (MiniLM + head) and registers a model version.",
        params_serializer=SentimentTrainParamsSerializer,
        queue="train",
        roles=frozenset({roles.ANALYST, roles.ADMIN}),
    )
)
