"""``genmodel_train`` (train queue): trains a sentence VAE and then a latent WGAN-GP on a text
corpus, and registers both as model versions (``vae`` ``name@N`` and ``gan`` ``name-gan@M``).

The VAE: ``architecture`` ``optimus`` (default: MiniLM encoder, SmolLM2 decoder with LoRA;
CPU-sized settings by default, larger ones on a GPU worker) or ``gru`` (the earlier small model).
The corpus: a ``domain``'s own (``product``: the copy corpus's training split; ``support``: the
shipped Bitext answers), whose purpose the versions get (copy, reply), so that jobs of that domain
use them; or inline ``texts``, a CSV on the workers (``csv`` under GENAI_GENMODEL_DATA_DIRS) or an
uploaded CSV's text (``csv_content``), reading ``text_cols``; with none of these, the shipped Bitext
data (GENAI_GENMODEL_DEFAULT_CSV, its instructions and responses). Texts are masked for personal
data and split into sentences. Loss curves (reconstruction, KL, active units; critic, generator,
gradient penalty) go to the job's metrics. Hyperparameters left out take the architecture's
defaults (``workers.train.optimus.OptimusTrainConfig``; the GRU's are in the runner)."""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.augment import csv_content_check, data_path_check
from generation.kinds.variants import DOMAINS


class GenModelTrainParamsSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=90, default="copy-vae", help_text="The VAE's version name; the GAN's is name-gan.")
    purpose = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="Default: the domain's (product: GENAI_GENMODEL_PURPOSE, support: reply), else GENAI_GENMODEL_PURPOSE.",
    )
    domain = serializers.ChoiceField(
        choices=("", *DOMAINS), required=False, allow_blank=True, default="",
        help_text="product: the copy corpus's training split; support: the Bitext answers. Its model then serves the "
        "domain's jobs. With texts/csv/csv_content, only the purpose.",
    )
    architecture = serializers.ChoiceField(
        choices=("optimus", "gru"), default="optimus",
        help_text="optimus: pretrained encoder and decoder (MiniLM, SmolLM2 + LoRA); gru: the small VAE trained from scratch.",
    )
    texts = serializers.ListField(
        child=serializers.CharField(max_length=settings.GENAI_GENMODEL_MAX_TEXT_CHARS),
        required=False, default=list, max_length=settings.GENAI_GENMODEL_MAX_TEXTS,
        help_text="Inline corpus: product descriptions, approved replies, ...",
    )
    csv = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="",
        help_text="A CSV on the workers, under GENAI_GENMODEL_DATA_DIRS.",
    )
    csv_content = serializers.CharField(
        max_length=settings.GENAI_GENMODEL_MAX_CSV_CHARS, required=False, allow_blank=True, default="", trim_whitespace=False,
        help_text="An uploaded CSV's text (header row first).",
    )
    text_cols = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=10,
        help_text='Columns holding the texts; default ["text"] for a CSV, the instructions and responses for Bitext.',
    )
    max_words = serializers.IntegerField(min_value=5, max_value=60, default=30, help_text="Longer sentences are left out.")
    validation_fraction = serializers.FloatField(min_value=0.02, max_value=0.5, default=0.1)
    epochs = serializers.IntegerField(min_value=1, max_value=settings.GENAI_GENMODEL_MAX_EPOCHS, required=False)
    max_steps = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False, help_text="VAE optimizer steps (0: epochs decide).")
    max_seconds = serializers.FloatField(
        min_value=5.0, max_value=settings.GENAI_GENMODEL_TRAIN_MAX_SECONDS, required=False,
        help_text="Training time budget, VAE and GAN together (default GENAI_GENMODEL_TRAIN_MAX_SECONDS).",
    )
    latent_dim = serializers.IntegerField(min_value=2, max_value=256, required=False)
    prefix_len = serializers.IntegerField(min_value=1, max_value=32, required=False, help_text="optimus: soft-prompt vectors.")
    encoder_train_layers = serializers.IntegerField(min_value=0, max_value=2, required=False,
                                                    help_text="optimus: encoder layers trained (0: frozen).")
    lora_rank = serializers.IntegerField(min_value=1, max_value=64, required=False, help_text="optimus.")
    memory = serializers.BooleanField(required=False, help_text="optimus: z as key/value slots in every decoder layer "
                                      "(Optimus's memory) instead of input vectors.")
    hidden_dim = serializers.IntegerField(min_value=16, max_value=1024, required=False, help_text="gru.")
    embed_dim = serializers.IntegerField(min_value=16, max_value=512, required=False, help_text="gru.")
    vocab_size = serializers.IntegerField(min_value=300, max_value=16000, required=False, help_text="gru.")
    batch_size = serializers.IntegerField(min_value=2, max_value=512, required=False)
    lr = serializers.FloatField(min_value=1e-6, max_value=1e-1, required=False)
    word_dropout = serializers.FloatField(min_value=0.0, max_value=0.9, required=False,
                                          help_text="Share of the decoder's input words hidden while training (both architectures).")
    kl_schedule = serializers.ChoiceField(choices=("linear", "cyclical", "constant"), required=False)
    kl_warmup_steps = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    kl_cycles = serializers.IntegerField(min_value=1, max_value=100, required=False)
    free_bits = serializers.FloatField(min_value=0.0, max_value=5.0, required=False, help_text="Nats per latent dimension.")
    eval_every = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    patience = serializers.IntegerField(min_value=0, max_value=100, required=False, help_text="0: no early stopping.")
    gan_steps = serializers.IntegerField(min_value=1, max_value=settings.GENAI_GENMODEL_MAX_GAN_STEPS, default=1500)
    n_critic = serializers.IntegerField(min_value=1, max_value=20, default=5)
    gan_diversity_weight = serializers.FloatField(
        min_value=0.0, max_value=10.0, default=settings.GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT,
        help_text="Weight of MSGAN's mode-seeking term in the generator's loss (0: plain WGAN-GP; default "
        "GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT).",
    )
    gan_only_for = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default="",
        help_text='An existing VAE ("name" or "name@3"): train only a new GAN on its latents (the VAE options are '
        "ignored); the corpus must be the one that VAE was trained on.",
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)

    def validate_csv(self, value: str) -> str:
        return data_path_check(value)

    def validate_gan_only_for(self, value: str) -> str:
        from generation.kinds.variants import genmodel_check

        return genmodel_check(value) if value.strip() else ""

    def validate_texts(self, value: list[str]) -> list[str]:
        texts = [t for t in value if t.strip()]
        if value and len(texts) < settings.GENAI_GENMODEL_MIN_SENTENCES:
            raise serializers.ValidationError(
                f"At least {settings.GENAI_GENMODEL_MIN_SENTENCES} non-empty texts (GENAI_GENMODEL_MIN_SENTENCES)."
            )
        return texts

    def validate(self, attrs: dict) -> dict:
        given = [k for k in ("texts", "csv", "csv_content") if attrs.get(k)]
        if len(given) > 1:
            raise serializers.ValidationError({"texts": [f"Give one corpus: texts, csv or csv_content (got {', '.join(given)})."]})
        if attrs.get("csv_content"):
            try:
                csv_content_check(attrs["csv_content"], columns=attrs.get("text_cols") or ["text"])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"csv_content": exc.detail}) from None
        if attrs.get("texts") and attrs.get("text_cols"):
            raise serializers.ValidationError({"text_cols": ["Only for a CSV corpus."]})
        return attrs


kind_register(
    JobKind(
        name="genmodel_train",
        description="Trains a sentence VAE and a latent GAN on a text corpus and registers both model versions.",
        params_serializer=GenModelTrainParamsSerializer,
        queue="train",
        masked_params=("texts[]", "csv_content"),
        roles=frozenset({roles.MARKETER, roles.ADMIN}),
    )
)
