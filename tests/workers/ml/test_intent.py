"""The intent head and its metrics (no embedding model needed)."""

import numpy as np
import pytest
import torch

from workers.ml.intent import IntentClassifier, IntentConfig
from workers.ml.metrics import classification_metrics


def test_metrics_by_hand():
    gold = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "a"]
    figures = classification_metrics(gold, predicted)
    # a: P 1/2 R 1/2 F 0.5; b: P 2/3 R 1 F 0.8; c: F 0 -> macro 0.4333
    assert figures == {"accuracy": 0.6, "macro_f1": pytest.approx(0.4333, abs=1e-4), "n": 5}
    assert classification_metrics([], []) == {"accuracy": 0.0, "macro_f1": 0.0, "n": 0}
    with pytest.raises(ValueError):
        classification_metrics(["a"], [])


@pytest.mark.parametrize("hidden", [0, 32])
def test_checkpoint_round_trip_predicts_the_same(tmp_path, hidden):
    torch.manual_seed(0)
    model = IntentClassifier(IntentConfig(input_dim=8, hidden=hidden, n_labels=3), ["x", "y", "z"])
    vectors = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    before = model.predict(vectors)
    loaded = IntentClassifier.load(model.save(tmp_path).parent)
    assert loaded.predict(vectors) == before
    assert loaded.config == model.config and loaded.labels == ["x", "y", "z"]
    label, confidence = loaded.predict(vectors[0])[0]
    assert label in {"x", "y", "z"} and 1 / 3 <= confidence <= 1
    assert loaded.predict(np.zeros((0, 8), dtype=np.float32)) == []


def test_label_count_must_match():
    with pytest.raises(ValueError):
        IntentClassifier(IntentConfig(input_dim=4, n_labels=3), ["a", "b"])
