"""Classification figures shared by the intent and sentiment classifiers."""

import pytest

from generation import sentiment_labels
from workers.ml import sentiment
from workers.ml.metrics import classification_metrics


def test_detail_adds_per_class_figures_and_the_confusion_matrix_in_label_order():
    gold = ["negative", "neutral", "positive", "positive"]
    predicted = ["negative", "positive", "positive", "neutral"]
    figures = classification_metrics(gold, predicted, ("negative", "neutral", "positive"), detail=True)
    assert figures["accuracy"] == 0.5 and figures["n"] == 4
    assert figures["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert figures["per_class"]["positive"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert figures["macro_f1"] == pytest.approx((1.0 + 0.0 + 0.5) / 3, abs=1e-4)


def test_a_class_never_seen_nor_predicted_does_not_count_in_macro_f1():
    figures = classification_metrics(["a", "a"], ["a", "a"], ("a", "b"), detail=True)
    assert figures["macro_f1"] == 1.0 and figures["per_class"]["b"]["support"] == 0


def test_the_model_predicts_the_classes_the_service_validates_label_maps_against():
    assert sentiment.LABELS == sentiment_labels.LABELS
