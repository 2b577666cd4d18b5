"""Intent detection in jobs: the intent_train runner registers a version with its curves, and
reply jobs carry the classifier's intent and confidence (the retrieved one without a classifier)."""

import csv

import pytest

from generation.models import JobMetric, ModelVersion
from generation.runner import NullContext
from generation.services.jobs import JobContext
from tests.factories import JobFactory
from tests.knowledge_fixtures import FIXTURE_INTENTS, PARAPHRASES
from workers.runners.intent import intent_train_run
from workers.runners.reply import reply_run
from workers.runtime.intent import intent_predict


@pytest.fixture
def intent_csv(tmp_path, bitext_fixture, settings):
    rows, _ = bitext_fixture
    settings.GENAI_FINETUNE_DATA_DIRS = [str(tmp_path)]
    path = tmp_path / "intents.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["instruction", "intent"])
        writer.writerows((r["instruction"], r["intent"]) for r in rows["conversations"])
    return path


def _train(path, **extra):
    job = JobFactory(kind="intent_train", status="running", worker_id="w1")
    ctx = JobContext(job_id=str(job.id), worker_id="w1", attempt=1, kind="intent_train", deadline=1e18)
    params = {"name": extra.pop("name", "intent-test"),
              "datasets": [{"path": str(path), "text_col": "instruction", "label_col": "intent"}],
              "encoder_layers": 0, "epochs": 15, "batch_size": 32, "lr": 1e-2, "hidden": 64, "patience": 15,
              "validation_fraction": 0.25,
              **extra}
    params = {k: v for k, v in params.items() if v is not None}  # None: the kind's default
    return job, intent_train_run(params=params, ctx=ctx)


def test_training_job_registers_a_version_with_validation_figures_and_curves(db, intent_csv, minilm):
    job, result = _train(intent_csv)
    version = ModelVersion.objects.get(family="intent", name="intent-test")
    assert (version.purpose, version.version, version.training_job_id) == ("reply", 1, job.id)
    assert version.metrics["validation_accuracy"] > 0.5 and version.metrics["labels"] == len(FIXTURE_INTENTS)
    assert result.model_version == "intent-test@1" and "validation accuracy" in result.candidates[0].text
    splits = set(JobMetric.objects.filter(job=job).values_list("split", flat=True))
    assert splits == {"train", "validation"}
    assert "macro_f1" in JobMetric.objects.filter(job=job, split="validation").first().values
    label, predictions = intent_predict([text for text, _ in PARAPHRASES])
    correct = sum(p == intent for (p, _), (_, intent) in zip(predictions, PARAPHRASES))
    assert label == "intent-test@1" and correct / len(PARAPHRASES) > 0.5


def test_prediction_reads_with_the_encoder_the_version_was_trained_on(db, intent_csv, minilm, settings):
    """A head trained on MiniLM's features keeps reading MiniLM's when the knowledge base moves to
    all-mpnet-base-v2 (whose 768-wide vectors it cannot read); an encoder this process cannot
    load leaves replies on retrieval's intent instead of failing them."""
    from workers.runtime import embeddings
    from workers.runtime.mpnet import MPNET_NAME

    _train(intent_csv)
    texts = [text for text, _ in PARAPHRASES]
    _, before = intent_predict(texts)
    assert ModelVersion.objects.get(family="intent", name="intent-test").base_model == "all-MiniLM-L6-v2"
    settings.GENAI_KB_EMBED_MODEL = MPNET_NAME
    label, after = intent_predict(texts)
    assert label == "intent-test@1" and [p for p, _ in after] == [p for p, _ in before]
    assert MPNET_NAME not in embeddings._embedders  # the knowledge base's encoder was never needed
    ModelVersion.objects.filter(family="intent").update(base_model="an-encoder-elsewhere")
    assert intent_predict(texts) == (None, [])


def test_reply_metadata_carries_the_intent(load_kb, intent_csv):
    load_kb("conversations")
    params = {"message": "please help me cancel the order I made yesterday", "max_new_tokens": 16, "k": 3}
    before = reply_run(params=params, ctx=NullContext()).candidates[0].metadata
    assert before["intent_source"] == "retrieval" and before["intent"] in FIXTURE_INTENTS
    assert before["intent_confidence"] is None
    _train(intent_csv)
    after = reply_run(params=params, ctx=NullContext()).candidates[0].metadata
    assert after["intent_source"] == "classifier" and after["intent_model"] == "intent-test@1"
    assert after["intent"] == "cancel_order" and 0 < after["intent_confidence"] <= 1


def test_operator_command_trains_registers_and_prints_metrics(db, intent_csv, minilm, capsys):
    import json

    from django.core.management import CommandError, call_command

    call_command(
        "intent_train", "--name", "intent-cli", "--dataset", f"{intent_csv}:instruction:intent", "--encoder-layers", "0",
        "--epochs", "3", "--hidden", "32", "--batch-size", "32", "--validation-fraction", "0.25",
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_version"] == "intent-cli@1" and 0.0 <= printed["validation_accuracy"] <= 1.0
    assert ModelVersion.objects.filter(family="intent", name="intent-cli").exists()
    with pytest.raises(CommandError, match="batch_size"):
        call_command("intent_train", "--dataset", f"{intent_csv}:instruction:intent", "--batch-size", "1")


def test_training_stores_the_baseline_and_intent_evaluate_scores_both_in_one_run(db, intent_csv, minilm, capsys, tmp_path):
    import json

    from django.core.management import CommandError, call_command

    from tests.knowledge_fixtures import bitext_rows

    _, result = _train(intent_csv, encoder_layers=1, epochs=1, hidden=0, batch_size=32, lr=1e-3)
    version = ModelVersion.objects.get(family="intent", name="intent-test")
    metrics = version.metrics
    assert metrics["encoder_layers"] == 1 and metrics["sources"] == ["intents"]
    assert metrics["baseline"]["model"] == "logistic regression on frozen embeddings"
    assert "Linear baseline (logistic regression on the frozen embeddings" in result.candidates[0].text
    label, predictions = intent_predict([text for text, _ in PARAPHRASES])  # token states below the tuned layer
    assert label == "intent-test@1" and sum(p == i for (p, _), (_, i) in zip(predictions, PARAPHRASES)) / len(PARAPHRASES) > 0.5

    # held-out rows: the 9th of each fixture intent (training had the first 8)
    known = {r["instruction"] for r in bitext_rows()}
    heldout = tmp_path / "heldout.csv"
    with open(heldout, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["instruction", "intent"])
        writer.writerows((r["instruction"], r["intent"]) for r in bitext_rows(per_intent=9) if r["instruction"] not in known)
    _train(intent_csv, name="intent-frozen", hidden=32)
    call_command("intent_evaluate", "--csv", str(heldout), "--text-col", "instruction", "--label-col", "intent",
                 "--model", "intent-test@1", "--compare", "intent-frozen", "--source", "intents")
    report = json.loads(capsys.readouterr().out)
    assert report["model_version"] == "intent-test@1" and report["n"] == len(FIXTURE_INTENTS) and report["source"] == "intents"
    assert report["baseline"]["model_version"] == "intent-test@1 baseline" and report["baseline"]["n"] == report["n"]
    assert report["accuracy_over_baseline"] == round(report["accuracy"] - report["baseline"]["accuracy"], 4)
    assert [c["model_version"] for c in report["compared"]] == ["intent-frozen@1"]
    assert report["accuracy"] > 0.5 and report["baseline"]["accuracy"] > 0.5
    with pytest.raises(CommandError, match="no label of source 'banking77_train'; the model's sources: intents"):
        call_command("intent_evaluate", "--csv", str(heldout), "--text-col", "instruction", "--label-col", "intent",
                     "--model", "intent-test@1", "--source", "banking77_train")


def test_a_version_without_a_baseline_says_so(db, intent_csv, minilm, capsys, tmp_path):
    import json

    from django.core.management import call_command

    _train(intent_csv, baseline=False, epochs=2)
    call_command("intent_evaluate", "--csv", str(intent_csv), "--text-col", "instruction", "--label-col", "intent")
    report = json.loads(capsys.readouterr().out)
    assert report["baseline"] is None and "without a baseline" in report["baseline_unavailable"]


def test_without_parameters_every_encoder_layer_is_fine_tuned(db, intent_csv, minilm):
    """The default that beat the linear baseline on held-out rows (docs/benchmarks.md)."""
    _, result = _train(intent_csv, encoder_layers=None, epochs=1, hidden=None, lr=None, patience=None)
    metrics = ModelVersion.objects.get(family="intent", name="intent-test").metrics
    assert metrics["encoder_layers"] == minilm.encoder_layer_count() == 6
