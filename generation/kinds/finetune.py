"""``finetune``: LoRA fine-tuning of the base LM (SmolLM2) for replies or product copy.

Examples: for ``purpose="reply"`` the Bitext dialogues (instruction -> response) and, optionally,
``dataset_jsonl`` (chat-format approved replies, as ``feedback_export`` writes them); for
``purpose="copy"`` the brand examples (``copy_training_examples``) and ``dataset_jsonl``. A
train/validation split (and, for replies, a held-back split scored with the reply service),
early stopping on validation loss, loss curves on the job; the adapter is registered as
``ModelVersion(family="lm_adapter", purpose=...)``. Promoting it (POST /api/models/{id}/promote)
makes the jobs of that purpose use it.
"""

from django.conf import settings
from rest_framework import serializers

from generation import roles
from generation.kinds import JobKind, kind_register
from generation.kinds.intent_train import data_path_check

PURPOSES = ("reply", "copy")


class FinetuneParamsSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=PURPOSES, default="reply", help_text="The job kind the adapter serves.")
    name = serializers.SlugField(max_length=100, required=False, help_text='Default "<purpose>-lora".')
    dataset_jsonl = serializers.CharField(
        max_length=1000,
        required=False,
        help_text='A JSONL file of {"messages": [...]} chats on the worker, under GENAI_FINETUNE_DATA_DIRS '
        "(e.g. approved replies from feedback_export).",
    )
    include_bitext = serializers.BooleanField(
        required=False, help_text="Train on the Bitext dialogues (GENAI_FINETUNE_BITEXT_CSV); default: for replies."
    )
    brand = serializers.CharField(max_length=200, required=False, help_text="copy: only this brand's examples.")
    # Defaults sized, by an estimate from the measured run, to finish inside the job time limit (600 s)
    # on 2 idle CPU cores (docs/benchmarks.md); longer runs need a GPU or a longer limit on the train worker.
    max_steps = serializers.IntegerField(min_value=1, max_value=settings.GENAI_FINETUNE_MAX_STEPS, default=40)
    epochs = serializers.FloatField(min_value=0.01, max_value=100, default=1.0, help_text="Stops at max_steps or this, first.")
    batch_size = serializers.IntegerField(min_value=1, max_value=64, default=2)
    lr = serializers.FloatField(min_value=1e-7, max_value=1e-1, default=5e-4)
    rank = serializers.IntegerField(min_value=1, max_value=settings.GENAI_FINETUNE_MAX_RANK, default=8)
    alpha = serializers.IntegerField(min_value=1, max_value=4 * settings.GENAI_FINETUNE_MAX_RANK, default=16)
    dropout = serializers.FloatField(min_value=0.0, max_value=0.5, default=0.05)
    max_examples = serializers.IntegerField(
        min_value=1, max_value=settings.GENAI_FINETUNE_MAX_EXAMPLES, default=settings.GENAI_FINETUNE_MAX_EXAMPLES,
        help_text="Training examples used at most (after the splits).",
    )
    max_tokens = serializers.IntegerField(min_value=32, max_value=settings.GENAI_FINETUNE_MAX_TOKENS,
                                          default=settings.GENAI_FINETUNE_MAX_TOKENS, help_text="Per example.")
    validation_fraction = serializers.FloatField(min_value=0.01, max_value=0.5, default=0.05)
    max_validation = serializers.IntegerField(min_value=1, max_value=5000, default=16,
                                              help_text="Validation examples at most (each evaluation runs them all).")
    eval_every = serializers.IntegerField(min_value=1, max_value=10_000, default=10, help_text="Steps between validations.")
    patience = serializers.IntegerField(min_value=1, max_value=100, default=3, help_text="Validations without improvement.")
    eval_replies = serializers.IntegerField(
        min_value=0, max_value=settings.GENAI_FINETUNE_MAX_EVAL_REPLIES, default=8,
        help_text="reply: held-back Bitext rows scored with the reply service, base vs adapter (0: none).",
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)
    top_layers = serializers.IntegerField(
        min_value=0, max_value=1000, default=0,
        help_text="LoRA on the top n decoder layers only (0: all); the layers below cost only their forward pass.",
    )
    max_seconds = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, required=False,
        help_text="Stop training after this many seconds of the job (the best weights so far are kept).",
    )
    init_from = serializers.CharField(
        max_length=120, required=False,
        help_text='Start from this adapter ("reply-rag@1", same rank and layers): a run continued in another time slot.',
    )
    prompt_format = serializers.ChoiceField(
        choices=("opening", "rag1", "sentences"), default="opening",
        help_text="reply: the prompt the examples use and the adapter is served with: 'opening' (the model writes "
        "the opening, the best answer the body) or 'rag1' (retrieval-augmented examples of manage.py reply_corpus: "
        "the model writes the whole reply from the retrieved answers). copy: 'opening' (the whole description at "
        "once) or 'sentences' (one sentence at a time along a plan of facts: rows of copy_corpus --format sentences).",
    )

    def validate_dataset_jsonl(self, value: str) -> str:
        return data_path_check(value)

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("name", f"{attrs['purpose']}-lora")
        attrs.setdefault("include_bitext", attrs["purpose"] == "reply")
        if attrs["purpose"] != "copy" and attrs.get("brand"):
            raise serializers.ValidationError({"brand": ["Only for purpose copy."]})
        if attrs["prompt_format"] == "sentences" and (attrs["purpose"] != "copy" or not attrs.get("dataset_jsonl")):
            raise serializers.ValidationError({"prompt_format": [
                "sentences is for purpose copy, trained on copy_corpus --format sentences's dataset_jsonl."]})
        if attrs["prompt_format"] == "rag1" and (attrs["purpose"] != "reply" or attrs["include_bitext"]):
            raise serializers.ValidationError({"prompt_format": [
                "rag1 is for purpose reply, trained on reply_corpus's dataset_jsonl only (include_bitext=false)."]})
        if not attrs["include_bitext"] and not attrs.get("dataset_jsonl") and attrs["purpose"] == "reply":
            raise serializers.ValidationError({"dataset_jsonl": ["Give a dataset or include_bitext=true."]})
        return attrs


kind_register(
    JobKind(
        name="finetune",
        description="LoRA fine-tuning of the LM for replies or copy; registers the adapter as a model version.",
        params_serializer=FinetuneParamsSerializer,
        queue="train",
        roles=frozenset({roles.ADMIN}),
    )
)
