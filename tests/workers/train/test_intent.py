"""Training the intent head on real MiniLM embeddings of a small sample: it beats chance by far,
splits are stratified, training stops early and keeps the best epoch."""

import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from workers.train.intent import (
    DatasetError,
    IntentTrainConfig,
    intent_train,
    labelled_csv_read,
    stratified_split,
)

BANKING = Path(__file__).resolve().parents[3].parent / "shared/data/customer_support/banking77_train.csv"
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
