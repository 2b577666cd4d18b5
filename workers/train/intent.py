"""Training loop of the intent classifier (workers/ml/intent.py) over precomputed sentence
embeddings (and, to fine-tune the encoder's top layers, the token states below them):
stratified train/validation split, the linear baseline (a logistic regression on the frozen
embeddings) fitted on the same split, AdamW, mini-batches, validation after every epoch, early
stopping on validation macro-F1 (ties broken by validation loss), the best epoch's weights kept
(epoch 0, where fine-tuning starts, included). No Django: the runner (workers/runners/intent.py)
embeds, logs and registers.
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
    lr: float = 2e-3  # the head's
    weight_decay: float = 1e-4
    patience: int = 4
    validation_fraction: float = 0.1
    seed: int = 0
    label_smoothing: float = 0.05
    encoder_lr: float = 5e-5  # the fine-tuned encoder layers' (model_config.encoder_layers)
    baseline: bool = True  # fit the linear baseline on the same split (and start a linear head from it)
    baseline_cs: tuple[float, ...] = (1.0, 10.0, 100.0)  # its inverse regularisation strengths, chosen on validation
    amp_dtype: str = ""  # "bfloat16": fine-tuning forward passes under autocast
    skip_lr_scale: float = 0.1  # the residual head's linear path: its learning rate is the head's times this


@dataclass
class IntentTrainResult:
    model: IntentClassifier
    metrics: dict
    history: list[dict] = field(default_factory=list)
    baseline: IntentClassifier | None = None  # the logistic regression on frozen embeddings


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def label_sources(labels: Sequence[str], sources: Sequence[str] | None, names: Sequence[str]) -> list[str]:
    """The source of each label name (``""`` when no sources are given, or when two sources use
    the name: it then belongs to every source's label space)."""
    if sources is None:
        return [""] * len(names)
    seen: dict[str, set[str]] = defaultdict(set)
    for label, source in zip(labels, sources):
        seen[label].add(source)
    return [next(iter(seen[name])) if len(seen[name]) == 1 else "" for name in names]


def linear_baseline_fit(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
    names: Sequence[str], sources: Sequence[str], cs: Sequence[float], seed: int = 0,
) -> tuple[IntentClassifier, dict]:
    """The simplest honest baseline: a multinomial logistic regression (scikit-learn, L-BFGS) on
    the frozen sentence embeddings, its ``C`` chosen on the validation rows (macro-F1, then
    accuracy), returned as a linear ``IntentClassifier`` (``hidden=0``) with its figures."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    started = time.monotonic()
    regression = LogisticRegression(max_iter=500, warm_start=True, random_state=seed)
    best, tried = None, {}
    for c in sorted(cs):
        regression.set_params(C=c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            regression.fit(x_train, y_train)
        figures = classification_metrics([names[i] for i in y_val], [names[i] for i in regression.predict(x_val)])
        tried[str(c)] = figures["accuracy"]
        if best is None or (figures["macro_f1"], figures["accuracy"]) > best[0]:
            best = ((figures["macro_f1"], figures["accuracy"]), c, regression.coef_.copy(), regression.intercept_.copy(), figures)
    _, c, coef, intercept, figures = best
    model = IntentClassifier(IntentConfig(input_dim=x_train.shape[1], hidden=0, dropout=0.0, n_labels=len(names)),
                             names, sources)
    weight = torch.zeros((len(names), x_train.shape[1]))
    bias = torch.full((len(names),), -1e4)  # a label with no training row is never predicted
    for row, cls in enumerate(regression.classes_):
        weight[int(cls)] = torch.as_tensor(coef[row], dtype=torch.float32)
        bias[int(cls)] = float(intercept[row])
    with torch.no_grad():
        model.net[1].weight.copy_(weight)
        model.net[1].bias.copy_(bias)
    metrics = {"model": "logistic regression on frozen embeddings", "C": c,
               "validation_accuracy": figures["accuracy"], "validation_macro_f1": figures["macro_f1"],
               "validation_accuracy_by_C": tried, "seconds": round(time.monotonic() - started, 2)}
    return model.eval(), metrics


def intent_train(
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    states: Sequence[np.ndarray] | None = None,
    top_init: Sequence[dict] | None = None,
    model_config: IntentConfig | None = None,
    config: IntentTrainConfig | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
) -> IntentTrainResult:
    """Train a classifier on ``vectors`` (n, dim) labelled ``labels`` (from ``sources``: each
    row's dataset, which gives every label its source). With ``model_config.encoder_layers``, the
    classifier fine-tunes that many top encoder layers (initialised from ``top_init``, their
    weights) on ``states`` (each row's token states below them). ``on_epoch`` gets each epoch's
    figures (epoch, step, train_loss, validation loss/accuracy/macro_f1); ``should_stop`` ends
    training early (cancel, time limit) keeping the best epoch so far."""
    threads = torch.get_num_threads()
    config = config or IntentTrainConfig()
    fine_tuning = bool(model_config and model_config.encoder_layers)
    if torch.device(device).type == "cpu" and not fine_tuning:
        # A head this small gains nothing from intra-op threads, and on a busy CPU their
        # synchronisation made epochs many times slower; one thread while it trains.
        torch.set_num_threads(1)
    try:
        return _train(vectors, labels, sources=sources, states=states, top_init=top_init, model_config=model_config,
                      config=config, on_epoch=on_epoch, should_stop=should_stop, device=device)
    finally:
        torch.set_num_threads(threads)


def _batches(rows: Sequence[int], *, size: int, lengths: Sequence[int] | None, generator: torch.Generator) -> list[list[int]]:
    """Mini-batches of ``rows`` in a random order; with ``lengths``, each batch holds rows of
    similar length (less padding), the batches shuffled."""
    if lengths is None:
        order = [rows[i] for i in torch.randperm(len(rows), generator=generator).tolist()]
        return [order[i : i + size] for i in range(0, len(order), size)]
    jitter = torch.rand(len(rows), generator=generator).tolist()  # rows of one length in a random order
    order = [r for _, r in sorted(zip([lengths[r] + j for r, j in zip(rows, jitter)], rows))]
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _train(vectors, labels, *, sources, states, top_init, model_config, config, on_epoch, should_stop, device) -> IntentTrainResult:
    from workers.ml.amp import autocast
    from workers.ml.intent import states_pad

    _seed(config.seed)
    names = sorted(set(labels))
    if len(names) < 2:
        raise DatasetError("training needs at least two different labels")
    index = {name: i for i, name in enumerate(names)}
    per_label_source = label_sources(labels, sources, names)
    y_all = torch.tensor([index[label] for label in labels], dtype=torch.long)
    x_all = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    train_idx, val_idx = stratified_split(labels, fraction=config.validation_fraction, seed=config.seed)
    if not val_idx:
        raise DatasetError("too few rows for a validation split")
    mc = model_config or IntentConfig()
    mc = IntentConfig(input_dim=x_all.shape[1], hidden=mc.hidden, dropout=mc.dropout, n_labels=len(names),
                      encoder_layers=mc.encoder_layers, encoder=mc.encoder, residual=mc.residual and mc.hidden > 0)
    fine_tuning = mc.encoder_layers > 0
    if fine_tuning and (states is None or top_init is None):
        raise ValueError("fine-tuning encoder layers needs the token states and the layers' initial weights")

    baseline, baseline_metrics = None, None
    if config.baseline:
        y_np = y_all.numpy()
        baseline, baseline_metrics = linear_baseline_fit(
            x_all[train_idx].numpy(), y_np[train_idx], x_all[val_idx].numpy(), y_np[val_idx],
            names=names, sources=per_label_source, cs=config.baseline_cs, seed=config.seed)

    model = IntentClassifier(mc, names, per_label_source)
    if fine_tuning:
        for layer, state in zip(model.top, top_init):
            layer.load_state_dict(state)
    if baseline is not None and not mc.hidden:
        model.net[1].load_state_dict(baseline.net[1].state_dict())  # a linear head starts where the baseline ends
    starts_as_baseline = baseline is not None and model.skip is not None
    if model.skip is not None:
        if baseline is not None:  # the residual head starts as the baseline: its linear path, the MLP silent
            model.skip.load_state_dict(baseline.net[1].state_dict())
        with torch.no_grad():
            model.net[-1].weight.zero_()
            model.net[-1].bias.zero_()
    model.to(device)
    groups = [{"params": list(model.net.parameters()), "lr": config.lr}]
    if model.skip is not None:  # the linear path moves slowly: it holds the baseline's fit
        groups.append({"params": list(model.skip.parameters()), "lr": config.lr * config.skip_lr_scale})
    if fine_tuning:
        groups.append({"params": list(model.top.parameters()), "lr": config.encoder_lr})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    lengths = [len(s) for s in states] if fine_tuning else None
    y_val = y_all[val_idx]

    def inputs(rows: Sequence[int]):
        if fine_tuning:
            return states_pad([states[r] for r in rows], device)
        return (x_all[rows].to(device),)

    def validate() -> tuple[float, dict]:
        model.eval()
        losses, predicted = [], []
        with torch.no_grad(), autocast(device, config.amp_dtype):
            for start in range(0, len(val_idx), 256):
                rows = val_idx[start : start + 256]
                logits = model(*inputs(rows)).float()
                losses.append(float(F.cross_entropy(logits, y_all[rows].to(device), reduction="sum")))
                predicted += logits.argmax(dim=-1).tolist()
        figures = classification_metrics([names[i] for i in y_val.tolist()], [names[i] for i in predicted])
        return sum(losses) / len(val_idx), figures

    generator = torch.Generator().manual_seed(config.seed)
    best_key, best_state, best_epoch, since_best, step = None, None, 0, 0, 0
    history = []
    started = time.monotonic()
    if fine_tuning or starts_as_baseline:  # epoch 0: where training starts (the baseline's head)
        val_loss, figures = validate()
        best_key, best_state = (figures["macro_f1"], -val_loss), copy.deepcopy(model.state_dict())
        history.append({"epoch": 0, "step": 0, "train_loss": None, "validation_loss": round(val_loss, 5),
                        "validation_accuracy": figures["accuracy"], "validation_macro_f1": figures["macro_f1"]})
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for batch in _batches(train_idx, size=config.batch_size, lengths=lengths, generator=generator):
            with autocast(device, config.amp_dtype):
                logits = model(*inputs(batch))
            target = y_all[batch].to(device)
            loss = F.cross_entropy(logits.float(), target, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
            if should_stop and should_stop():
                break
        val_loss, figures = validate()
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
    best = next(p for p in history if p["epoch"] == best_epoch)
    epochs_run = sum(1 for p in history if p["epoch"] > 0)
    metrics = {
        "validation_accuracy": best["validation_accuracy"],
        "validation_macro_f1": best["validation_macro_f1"],
        "validation_loss": best["validation_loss"],
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "early_stopped": epochs_run < config.epochs,
        "train_rows": len(train_idx),
        "validation_rows": len(val_idx),
        "labels": len(names),
        "sources": sorted(set(per_label_source) - {""}),
        "encoder_layers": mc.encoder_layers,
        "train_seconds": round(time.monotonic() - started, 2),
    }
    if baseline_metrics is not None:
        metrics["baseline"] = baseline_metrics
    return IntentTrainResult(model=model.cpu(), metrics=metrics, history=history, baseline=baseline)
