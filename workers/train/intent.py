"""Training loop of the intent classifier (workers/ml/intent.py) over precomputed sentence
embeddings: stratified train/validation split, AdamW, mini-batches, validation after every
epoch, early stopping on validation macro-F1 (ties broken by validation loss), the best epoch's
weights kept. No Django: the runner (workers/runtime/intent.py) embeds, logs and registers.
"""

from __future__ import annotations

import copy
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from generation.text.tables import CsvError, csv_read
from workers.ml.intent import IntentClassifier, IntentConfig
from workers.ml.metrics import classification_metrics


class DatasetError(ValueError):
    """A CSV that cannot be used: a missing column, no rows."""


def labelled_csv_read(path: Path | str, *, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """Texts and labels of a CSV with a header row; rows with an empty text or label are skipped."""
    try:
        table = csv_read(path, columns=[text_col, label_col])
    except CsvError as exc:
        raise DatasetError(str(exc)) from None
    texts, labels = [], []
    for text, label in zip(table.column(text_col), table.column(label_col)):
        if text and label:
            texts.append(text)
            labels.append(label)
    if not texts:
        raise DatasetError(f"{path} has no labelled rows")
    return texts, labels


def stratified_split(labels: Sequence[str], *, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: ``fraction`` of each label's rows (at least one when the label
    has two or more) go to validation."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        k = round(len(rows) * fraction)
        if len(rows) >= 2:
            k = min(max(k, 1), len(rows) - 1)
        else:
            k = 0
        validation += rows[:k]
        train += rows[k:]
    return sorted(train), sorted(validation)


@dataclass
class IntentTrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 4
    validation_fraction: float = 0.1
    seed: int = 0
    label_smoothing: float = 0.05


@dataclass
class IntentTrainResult:
    model: IntentClassifier
    metrics: dict
    history: list[dict] = field(default_factory=list)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def intent_train(
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    model_config: IntentConfig | None = None,
    config: IntentTrainConfig | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
) -> IntentTrainResult:
    """Train a head on ``vectors`` (n, dim) labelled ``labels``. ``on_epoch`` gets each epoch's
    figures (epoch, step, train_loss, validation loss/accuracy/macro_f1); ``should_stop`` ends
    training early (cancel, time limit) keeping the best epoch so far."""
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        # A head this small gains nothing from intra-op threads, and on a busy CPU their
        # synchronisation made epochs many times slower; one thread while it trains.
        torch.set_num_threads(1)
    try:
        return _train(vectors, labels, model_config=model_config, config=config or IntentTrainConfig(),
                      on_epoch=on_epoch, should_stop=should_stop, device=device)
    finally:
        torch.set_num_threads(threads)


def _train(vectors, labels, *, model_config, config, on_epoch, should_stop, device) -> IntentTrainResult:
    _seed(config.seed)
    names = sorted(set(labels))
    if len(names) < 2:
        raise DatasetError("training needs at least two different labels")
    index = {name: i for i, name in enumerate(names)}
    y_all = torch.tensor([index[label] for label in labels], dtype=torch.long)
    x_all = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    train_idx, val_idx = stratified_split(labels, fraction=config.validation_fraction, seed=config.seed)
    if not val_idx:
        raise DatasetError("too few rows for a validation split")
    mc = model_config or IntentConfig()
    mc = IntentConfig(input_dim=x_all.shape[1], hidden=mc.hidden, dropout=mc.dropout, n_labels=len(names))
    model = IntentClassifier(mc, names).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_train, y_train = x_all[train_idx].to(device), y_all[train_idx].to(device)
    x_val, y_val = x_all[val_idx].to(device), y_all[val_idx].to(device)
    generator = torch.Generator().manual_seed(config.seed)
    best_key, best_state, best_epoch, since_best, step = None, None, 0, 0, 0
    history = []
    started = time.monotonic()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train_idx), generator=generator)
        total, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = float(F.cross_entropy(logits, y_val))
            predicted = logits.argmax(dim=-1).tolist()
        figures = classification_metrics([names[i] for i in y_val.tolist()], [names[i] for i in predicted])
        point = {
            "epoch": epoch,
            "step": step,
            "train_loss": round(total / max(seen, 1), 5),
            "validation_loss": round(val_loss, 5),
            "validation_accuracy": figures["accuracy"],
            "validation_macro_f1": figures["macro_f1"],
        }
        history.append(point)
        if on_epoch:
            on_epoch(point)
        key = (figures["macro_f1"], -val_loss)
        if best_key is None or key > best_key:
            best_key, best_state, best_epoch, since_best = key, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since_best += 1
        if since_best >= config.patience or (should_stop and should_stop()):
            break
    model.load_state_dict(best_state)
    model.eval()
    best = history[best_epoch - 1]
    metrics = {
        "validation_accuracy": best["validation_accuracy"],
        "validation_macro_f1": best["validation_macro_f1"],
        "validation_loss": best["validation_loss"],
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "early_stopped": len(history) < config.epochs,
        "train_rows": len(train_idx),
        "validation_rows": len(val_idx),
        "labels": len(names),
        "train_seconds": round(time.monotonic() - started, 2),
    }
    return IntentTrainResult(model=model.cpu(), metrics=metrics, history=history)
