"""Classification figures, the same for every classifier (intent, sentiment): pure Python."""

from __future__ import annotations

from collections.abc import Sequence


def classification_metrics(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None, *, detail: bool = False
) -> dict:
    """Accuracy and macro-F1 (``n``, ``accuracy``, ``macro_f1``) of ``predicted`` against ``gold``.

    ``labels``: the classes, in report order (default: those in ``gold``, sorted); a prediction
    outside them counts as wrong and belongs to no class. Macro-F1 averages the classes that occur
    in ``gold`` or in the predictions (a class the model never predicts counts with F1 0). With
    ``detail``: per-class precision/recall/F1/support and the confusion matrix (rows gold,
    columns predicted, both in ``labels`` order)."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    n = len(gold)
    if n == 0 and not detail:
        return {"accuracy": 0.0, "macro_f1": 0.0, "n": 0}
    labels = list(labels) if labels is not None else sorted(set(gold))
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        if p in index:
            confusion[index[g]][index[p]] += 1
    correct = sum(g == p for g, p in zip(gold, predicted))
    per_class, f1s = {}, []
    for i, label in enumerate(labels):
        tp = confusion[i][i]
        predicted_i = sum(row[i] for row in confusion)
        support = sum(confusion[i]) + sum(g == label and p not in index for g, p in zip(gold, predicted))
        precision = tp / predicted_i if predicted_i else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": support}
        if support or predicted_i:
            f1s.append(f1)
    figures = {
        "n": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
    }
    if detail:
        figures |= {"per_class": per_class, "labels": labels, "confusion_matrix": confusion}
    return figures
