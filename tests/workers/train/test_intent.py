"""Training the intent head on real MiniLM embeddings of a small sample: it beats chance by far,
splits are stratified, training stops early and keeps the best epoch."""

import csv
import random
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from workers.train.intent import (
    DatasetError,
    IntentTrainConfig,
    intent_train,
    labelled_csv_read,
    stratified_split,
)

BANKING = Path(settings.SHARED_DATA_DIR) / "customer_support/banking77_train.csv"
INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed", "pin_blocked", "cash_withdrawal_charge")


@pytest.fixture(scope="module")
def sample():
    """12 rows of each of 6 Banking77 intents, with their MiniLM embeddings."""
    from workers.runtime.embeddings import embedder_get

    texts, labels = labelled_csv_read(BANKING, text_col="text", label_col="category")
    rows, seen = [], Counter()
    for text, label in zip(texts, labels):
        if label in INTENTS and seen[label] < 12:
            rows.append((text, label))
            seen[label] += 1
    return embedder_get().encode([t for t, _ in rows]), [label for _, label in rows]


@pytest.fixture(scope="module")
def sample_states(sample):
    """The same rows' sentence vectors and token states below MiniLM's top layer."""
    from workers.runtime.embeddings import embedder_get

    texts, labels = labelled_csv_read(BANKING, text_col="text", label_col="category")
    rows, seen = [], Counter()
    for text, label in zip(texts, labels):
        if label in INTENTS and seen[label] < 12:
            rows.append((text, label))
            seen[label] += 1
    embedder = embedder_get()
    vectors, states = embedder.encode_with_states([t for t, _ in rows], layer=embedder.encoder_layer_count() - 1)
    assert abs(vectors - sample[0]).max() < 1e-5  # the same vectors as encode() gives
    return vectors, states, [label for _, label in rows]


def test_stratified_split_holds_out_each_label():
    labels = ["a"] * 10 + ["b"] * 20 + ["c"] * 1
    train, validation = stratified_split(labels, fraction=0.2, seed=0)
    assert sorted(train + validation) == list(range(31)) and not set(train) & set(validation)
    held = Counter(labels[i] for i in validation)
    assert held == {"a": 2, "b": 4}  # a single-row label stays in training
    assert stratified_split(labels, fraction=0.2, seed=0) == (train, validation)


def test_a_few_epochs_beat_chance_on_held_out_rows(sample):
    vectors, labels = sample
    points = []
    result = intent_train(vectors, labels, config=IntentTrainConfig(epochs=25, batch_size=16, lr=5e-3, patience=25,
                                                                     validation_fraction=0.25, seed=0),
                          on_epoch=points.append)
    metrics = result.metrics
    chance = 1 / len(INTENTS)
    assert metrics["validation_accuracy"] >= 3 * chance  # 6 intents: chance is 0.167
    assert metrics["validation_macro_f1"] >= 0.4
    assert metrics["validation_rows"] == 18 and metrics["labels"] == 6
    assert points[-1]["train_loss"] < points[0]["train_loss"]
    assert [p["epoch"] for p in points] == list(range(1, len(points) + 1))
    predicted = [label for label, _ in result.model.predict(vectors)]
    assert sum(p == g for p, g in zip(predicted, labels)) / len(labels) > 0.8  # training rows fit


def test_early_stopping_keeps_the_best_epoch(sample):
    vectors, labels = sample
    shuffled = labels[:]
    random.Random(0).shuffle(shuffled)  # no signal: validation cannot keep improving
    result = intent_train(vectors, shuffled, config=IntentTrainConfig(epochs=200, batch_size=16, lr=1e-2, patience=3))
    metrics = result.metrics
    assert metrics["early_stopped"] and metrics["epochs_run"] < 200
    best = result.history[metrics["best_epoch"] - 1]
    assert metrics["validation_macro_f1"] == max(p["validation_macro_f1"] for p in result.history) == best["validation_macro_f1"]


def test_bad_csvs_are_named(tmp_path):
    path = tmp_path / "x.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["text", "label"], ["hi", "a"]])
    with pytest.raises(DatasetError, match="'category'"):
        labelled_csv_read(path, text_col="text", label_col="category")
    with pytest.raises(DatasetError, match="cannot read"):
        labelled_csv_read(tmp_path / "missing.csv", text_col="text", label_col="label")
    with pytest.raises(DatasetError, match="two different labels"):
        intent_train([[0.0, 1.0], [1.0, 0.0]], ["a", "a"])


def test_the_linear_baseline_is_fitted_on_the_same_split(sample):
    vectors, labels = sample
    result = intent_train(vectors, labels, config=IntentTrainConfig(epochs=5, batch_size=16, validation_fraction=0.25,
                                                                     baseline_cs=(1.0, 10.0)))
    baseline = result.metrics["baseline"]
    assert baseline["model"] == "logistic regression on frozen embeddings" and baseline["C"] in (1.0, 10.0)
    assert set(baseline["validation_accuracy_by_C"]) == {"1.0", "10.0"}
    assert baseline["validation_accuracy"] >= 0.5  # 6 intents, 18 validation rows
    assert result.baseline.config.hidden == 0 and result.baseline.labels == result.model.labels
    # the stored baseline predicts what the metrics say, on the same validation rows
    _, validation = stratified_split(labels, fraction=0.25, seed=0)
    predicted = [p for p, _ in result.baseline.predict(vectors[validation])]
    assert sum(p == labels[i] for p, i in zip(predicted, validation)) / len(validation) == baseline["validation_accuracy"]
    without = intent_train(vectors, labels, config=IntentTrainConfig(epochs=2, batch_size=16, validation_fraction=0.25,
                                                                      baseline=False))
    assert without.baseline is None and "baseline" not in without.metrics


def test_labels_keep_their_source(sample):
    vectors, labels = sample
    sources = ["cards" if label in INTENTS[:3] else "money" for label in labels]
    result = intent_train(vectors, labels, sources=sources, config=IntentTrainConfig(epochs=3, batch_size=16,
                                                                                     validation_fraction=0.25))
    assert result.model.sources == ["cards" if name in INTENTS[:3] else "money" for name in result.model.labels]
    assert result.metrics["sources"] == ["cards", "money"] and result.baseline.sources == result.model.sources
    predicted = result.model.predict(vectors, source="money")
    assert {label for label, _ in predicted} <= set(INTENTS[3:])


def test_fine_tuning_the_top_layer_starts_from_the_baseline_and_keeps_the_best_epoch(sample_states):
    from workers.ml.intent import IntentConfig
    from workers.runtime.embeddings import embedder_get

    vectors, states, labels = sample_states
    embedder = embedder_get()
    points = []
    result = intent_train(
        vectors, labels, states=states, top_init=embedder.encoder_top_state(1),
        model_config=IntentConfig(hidden=0, encoder_layers=1, encoder=embedder.encoder_config()),
        config=IntentTrainConfig(epochs=2, batch_size=16, lr=1e-3, encoder_lr=1e-4, patience=2, validation_fraction=0.25),
        on_epoch=points.append,
    )
    start = result.history[0]
    assert start["epoch"] == 0 and start["validation_accuracy"] == result.metrics["baseline"]["validation_accuracy"]
    assert [p["epoch"] for p in points] == [1, 2] and result.metrics["encoder_layers"] == 1
    assert result.metrics["validation_macro_f1"] == max(p["validation_macro_f1"] for p in result.history)
    assert len(result.model.top) == 1
    predicted = [label for label, _ in result.model.predict(states)]
    assert sum(p == g for p, g in zip(predicted, labels)) / len(labels) > 0.8


def test_fine_tuning_needs_the_states(sample):
    from workers.ml.intent import IntentConfig

    vectors, labels = sample
    with pytest.raises(ValueError, match="token states"):
        intent_train(vectors, labels, model_config=IntentConfig(hidden=0, encoder_layers=1, encoder={"model_type": "bert"}))


def test_the_residual_head_starts_as_the_baseline_and_never_ends_below_it_on_validation(sample, tmp_path):
    from workers.ml.intent import IntentClassifier, IntentConfig

    vectors, labels = sample
    config = IntentTrainConfig(epochs=8, batch_size=16, validation_fraction=0.25, baseline_cs=(1.0, 10.0), patience=8)
    result = intent_train(vectors, labels, model_config=IntentConfig(hidden=32, residual=True), config=config)
    start = result.history[0]
    assert start["epoch"] == 0 and start["validation_accuracy"] == result.metrics["baseline"]["validation_accuracy"]
    assert result.metrics["validation_macro_f1"] >= result.metrics["baseline"]["validation_macro_f1"]
    assert result.model.skip is not None and result.model.config.residual
    # Saved and loaded, it predicts as trained (the linear path is part of the checkpoint).
    result.model.save(tmp_path)
    loaded = IntentClassifier.load(tmp_path)
    assert loaded.predict(vectors) == result.model.predict(vectors)
