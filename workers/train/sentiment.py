"""Training loop of the sentiment classifier (workers/ml/sentiment.py): fine-tunes the whole
encoder with a fresh head, AdamW with warm-up and linear decay, validation a few times per epoch,
early stopping on validation macro-F1, the best checkpoints kept in memory.

Options (each reported on validation against plain training by the runner):
- ``adversarial``: FGM (Miyato et al. 2017): after the clean backward pass the token-embedding
  table is moved by ``epsilon * g / ||g||`` along its gradient, the loss of that perturbed batch is
  back-propagated too, and the table is restored before the optimizer step.
- ``ensemble``: the ``k`` best checkpoints of the run, their probabilities averaged.
- ``seeds`` (the runner): ``k`` runs with seeds ``seed .. seed + k - 1``, their kept checkpoints
  pooled and averaged (``outcomes_merge``).
- extra (augmented) training examples are given by the caller.

No Django here: the runner (workers/runtime/sentiment.py) reads settings, logs to the job and
registers the model version.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from generation.sentiment_labels import DEFAULT_LABEL_MAP, LABELS, DatasetError, label_map_parse  # noqa: F401
from generation.text.tables import CsvError, csv_read
from workers.ml.amp import autocast
from workers.ml.building import model_building
from workers.ml.intent import states_pad
from workers.ml.metrics import classification_metrics
from workers.ml.sentiment import (
    SentimentClassifier,
    SentimentConfig,
    encode_batch,
    ensemble_probabilities,
    predict_probabilities,
    text_normalise,
)


def dataset_read(
    path: Path | str, *, text_col: str = "text", label_col: str | None = "label", label_map: dict[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """Texts and label names of a CSV with a header row. Labels are mapped by ``label_map``; a
    label already named like ours (negative/neutral/positive) passes unmapped. ``label_col=None``
    reads texts only (labels empty)."""
    label_map = DEFAULT_LABEL_MAP if label_map is None else label_map
    texts, labels = [], []
    try:
        table = csv_read(path, columns=[c for c in (text_col, label_col) if c is not None])
    except CsvError as exc:
        raise DatasetError(str(exc)) from None
    for line, row in zip(table.lines, table.rows):
        text = (row.get(text_col) or "").strip()
        if not text:
            raise DatasetError(f"line {line}: empty {text_col!r}")
        texts.append(text)
        if label_col is not None:
            raw = (row.get(label_col) or "").strip()
            label = label_map.get(raw, raw.lower())
            if label not in LABELS:
                raise DatasetError(f"line {line}: label {raw!r} is not in the label map {label_map}")
            labels.append(label)
    if not texts:
        raise DatasetError("the CSV has no rows")
    return texts, labels


def rows_subset(texts: list[str], labels: list[str], *, max_rows: int, seed: int) -> tuple[list[str], list[str]]:
    """A random subset of ``max_rows`` rows (files are often sorted by label), in file order."""
    if not max_rows or max_rows >= len(texts):
        return texts, labels
    keep = sorted(random.Random(seed).sample(range(len(texts)), max_rows))
    return [texts[i] for i in keep], [labels[i] for i in keep]


def split_stratified(
    labels: list[str], *, test_fraction: float, validation_fraction: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Row indices (train, validation, test), each class split in the same proportions; the
    same labels and seed always give the same split, so a held-out test split can be rebuilt."""
    rng = random.Random(seed)
    train, validation, test = [], [], []
    for label in LABELS:
        rows = [i for i, value in enumerate(labels) if value == label]
        rng.shuffle(rows)
        n_test = round(len(rows) * test_fraction)
        n_val = round(len(rows) * validation_fraction)
        test += rows[:n_test]
        validation += rows[n_test : n_test + n_val]
        train += rows[n_test + n_val :]
    return sorted(train), sorted(validation), sorted(test)


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    max_len: int = 64
    dropout: float = 0.1
    evals_per_epoch: int = 2
    patience: int = 2  # evaluations without a better validation macro-F1 before stopping
    max_steps: int = 0  # 0: no limit (tests and quick comparisons set one)
    adversarial: bool = False
    fgm_epsilon: float = 1.0
    ensemble: int = 1  # checkpoints averaged at inference (1: the best one)
    train_layers: int = -1  # encoder layers fine-tuned, from the top (-1: all, embeddings too; 0: the head only)
    seed: int = 0
    log_every: int = 10
    evaluate_initial: bool = False  # validate the untrained model first (step 0), to show the gain
    amp_dtype: str = ""  # "bfloat16": forward passes under autocast (GPUs, CPUs with native bf16); "": float32


@dataclass
class Checkpoint:
    step: int
    epoch: float
    state: dict  # CPU copy of the state dict
    validation: dict


@dataclass
class TrainOutcome:
    model: SentimentClassifier  # holds the best checkpoint's weights
    tokenizer: object
    checkpoints: list[Checkpoint]  # the kept ones, best first
    validation_best: dict
    validation_ensemble: dict | None
    steps: int
    seconds: float
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@model_building
def classifier_from_base(base_dir: Path | str, *, max_len: int, dropout: float) -> tuple[SentimentClassifier, object]:
    """A classifier whose encoder starts from a local transformers/sentence-transformers
    directory (all-MiniLM-L6-v2's weights, or a decoder such as SmolLM2's) and whose head is new."""
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(str(base_dir), local_files_only=True, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    if tokenizer.pad_token is None:  # decoders: pad with end-of-text (masked out of the pooling)
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    encoder_config = encoder.config.to_dict()
    for key in ("architectures", "_name_or_path", "transformers_version", "torch_dtype", "dtype"):
        encoder_config.pop(key, None)
    config = SentimentConfig(encoder=encoder_config, max_len=max_len, dropout=dropout)
    return SentimentClassifier(config, encoder=encoder), tokenizer


def layers_freeze(model: SentimentClassifier, train_layers: int) -> None:
    """Fine-tune only the top ``train_layers`` encoder layers (and the head); -1: everything.
    The frozen part runs without gradients, which is what makes CPU training cheap."""
    if train_layers < 0:
        return
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(False)
    encoder = model.encoder
    layers = encoder.layers if hasattr(encoder, "layers") else encoder.encoder.layer  # decoder / BERT layout
    for layer in list(layers)[len(layers) - train_layers :] if train_layers else []:
        for parameter in layer.parameters():
            parameter.requires_grad_(True)
    if train_layers and hasattr(encoder, "norm"):  # a decoder's final norm sits above its top layer
        for parameter in encoder.norm.parameters():
            parameter.requires_grad_(True)


def evaluate(models: list[SentimentClassifier], tokenizer, texts: list[str], labels: list[str], **kwargs) -> dict:
    names = models[0].config.labels
    probabilities = predict_probabilities(models, tokenizer, texts, **kwargs)
    predicted = [names[i] for i in probabilities.argmax(axis=1)]
    return classification_metrics(labels, predicted, tuple(names), detail=True)


# --- token states of the frozen layers, cached on disk ------------------------------------------


def encoder_key(base_dir: Path | str) -> str:
    """Names an encoder's weights in the cache: the directory's name and a digest of its weight
    files' paths, sizes and modification times (a new version of the weights is a new key)."""
    base_dir = Path(base_dir).resolve()
    parts = [str(base_dir)]
    for path in sorted(base_dir.glob("*.safetensors")) + sorted(base_dir.glob("*.bin")):
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return f"{base_dir.name}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:12]}"


@dataclass
class CachedStates:
    states: list[np.ndarray]  # per text, (tokens, dim) float16: the token states after layer ``start``
    pooled: np.ndarray  # (n, dim) float32: the frozen encoder's sentence vector (mean of the last layer's states)
    start: int
    computed: int  # how many texts this call encoded (the rest came from the cache)
    seconds: float


def states_cached(
    model: SentimentClassifier, tokenizer, texts: list[str], *, cache_dir: Path | str, key: str, start: int,
    device=None, amp_dtype: str = "", batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> CachedStates:
    """Per text, the token states after encoder layer ``start`` (0: the embeddings) and the frozen
    encoder's mean-pooled sentence vector, from ``cache_dir`` where an earlier run computed them,
    else computed (one forward pass, texts in length order, ``inference_mode``) and written there.
    A file per text, named by the encoder ``key``, ``start``, the max length, the autocast dtype and
    the text's SHA-256: a re-run of training, another head or another split encodes nothing again.
    The encoder's weights must be the base weights (nothing fine-tuned below ``start`` yet)."""
    started = time.monotonic()
    max_len = model.config.max_len
    folder = Path(cache_dir) / key / f"layer{start}-len{max_len}-{amp_dtype or 'float32'}"
    names = [hashlib.sha256(text_normalise(t).encode()).hexdigest() for t in texts]
    paths = [folder / name[:2] / f"{name}.npz" for name in names]
    states: list[np.ndarray | None] = [None] * len(texts)
    pooled = np.zeros((len(texts), model.encoder.config.hidden_size), dtype=np.float32)
    missing = []
    for i, path in enumerate(paths):
        try:
            with np.load(path) as data:
                states[i], pooled[i] = data["states"], data["pooled"]
        except (OSError, KeyError, ValueError):
            missing.append(i)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(missing, key=lambda i: len(texts[i]))
    done = 0
    with torch.inference_mode(), autocast(device, amp_dtype):
        for begin in range(0, len(order), batch_size):
            rows = order[begin : begin + batch_size]
            batch = encode_batch(tokenizer, [texts[i] for i in rows], max_len=max_len, device=device)
            out = model.encoder(**batch, output_hidden_states=True)
            mask = batch["attention_mask"]
            weights = mask.unsqueeze(-1).float()
            vectors = ((out.last_hidden_state.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)).cpu().numpy()
            hidden = out.hidden_states[start].to(torch.float16).cpu().numpy()
            for j, i in enumerate(rows):
                states[i] = np.ascontiguousarray(hidden[j, : int(mask[j].sum())])
                pooled[i] = vectors[j]
                paths[i].parent.mkdir(parents=True, exist_ok=True)
                tmp = paths[i].with_name(f"{paths[i].stem}.{os.getpid()}.tmp.npz")
                np.savez(tmp, states=states[i], pooled=pooled[i])
                os.replace(tmp, paths[i])
            done += len(rows)
            if progress:
                progress(done, len(order))
    model.train(was_training)
    return CachedStates(states=states, pooled=pooled, start=start, computed=len(order), seconds=time.monotonic() - started)


def probabilities_from_states(
    models: list[SentimentClassifier], states: list[np.ndarray], *, start: int, batch_size: int = 64, device=None,
    amp_dtype: str = "",
) -> np.ndarray:
    """``predict_probabilities`` over cached token states (the layers above ``start`` run)."""

    def forward(model, batch, device):
        padded, mask = states_pad(batch, device)
        return model.forward_from_states(padded, mask, start=start)

    return ensemble_probabilities(models, states, forward, batch_size=batch_size, device=device, amp_dtype=amp_dtype)


def evaluate_states(models: list[SentimentClassifier], states: list[np.ndarray], labels: list[str], *, start: int, **kwargs) -> dict:
    names = models[0].config.labels
    probabilities = probabilities_from_states(models, states, start=start, **kwargs)
    return classification_metrics(labels, [names[i] for i in probabilities.argmax(axis=1)], tuple(names), detail=True)


# Variance under which a pooled dimension counts as constant (the baseline drops it): far below
# any informative dimension's (all-mpnet-base-v2: 1e-3 and up), far above rounding noise.
CONSTANT_VARIANCE = 1e-8


def frozen_baseline(
    train: np.ndarray, train_labels: list[str], val: np.ndarray, val_labels: list[str], *,
    names: tuple[str, ...] = LABELS, cs: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0), seed: int = 0,
) -> tuple[object, dict]:
    """The simplest honest baseline on a frozen encoder: a logistic regression (scikit-learn) on
    its mean-pooled sentence vectors (standardised), ``C`` chosen on validation macro-F1. Returns
    the fitted pipeline and its validation figures (``C`` included).

    Dimensions that are constant up to rounding are dropped first: all-mpnet-base-v2 has four
    (standard deviation 0 to 5e-7 against a median of 0.09), and standardising them blew rounding
    noise up to unit variance and gave the head folded from the pipeline weights of 1e33."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best = None
    for c in cs:
        pipeline = make_pipeline(
            VarianceThreshold(CONSTANT_VARIANCE), StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(train, [names.index(label) for label in train_labels])
        figures = classification_metrics(val_labels, [names[i] for i in pipeline.predict(val)], names, detail=True)
        if best is None or (figures["macro_f1"], figures["accuracy"]) > (best[1]["macro_f1"], best[1]["accuracy"]):
            best = (pipeline, {**figures, "C": c})
    return best


def baseline_evaluate(pipeline, vectors: np.ndarray, labels: list[str], *, names: tuple[str, ...] = LABELS) -> dict:
    return classification_metrics(labels, [names[i] for i in pipeline.predict(vectors)], names, detail=True)


def baseline_head(pipeline, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``frozen_baseline``'s pipeline as one linear map of the pooled vector, (weight ``(classes,
    dim)``, bias): the feature selection and the scaler folded in, dropped dimensions weighted 0.
    A classifier head initialised with it predicts what the pipeline predicts."""
    selector, scaler, regression = pipeline[0], pipeline[1], pipeline[-1]
    selected = regression.coef_ / scaler.scale_
    weight = np.zeros((selected.shape[0], dim), dtype=np.float64)
    weight[:, selector.get_support()] = selected
    bias = regression.intercept_ - selected @ scaler.mean_
    return weight.astype(np.float32), bias.astype(np.float32)


class FGM:
    """Fast Gradient Method on the token-embedding table."""

    def __init__(self, embeddings: torch.nn.Embedding, epsilon: float):
        self.weight = embeddings.weight
        self.epsilon = epsilon
        self.backup: torch.Tensor | None = None

    def attack(self) -> bool:
        grad = self.weight.grad
        if grad is None:
            return False
        norm = torch.linalg.vector_norm(grad)
        if not torch.isfinite(norm) or norm == 0:
            return False
        self.backup = self.weight.data.clone()
        self.weight.data.add_(self.epsilon * grad / norm)
        return True

    def restore(self) -> None:
        if self.backup is not None:
            self.weight.data.copy_(self.backup)
            self.backup = None


def _batches(indices: list[int], lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort within pools of 50 batches, cut, and
    shuffle the batches (less padding, still random)."""
    indices = indices[:]
    rng.shuffle(indices)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(indices), pool):
        chunk = sorted(indices[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train_classifier(
    *,
    base_dir: Path | str,
    train_texts: list[str],
    train_labels: list[str],
    val_texts: list[str],
    val_labels: list[str],
    config: TrainConfig,
    device=None,
    log: Callable[..., None] | None = None,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cached: tuple[CachedStates, CachedStates] | None = None,
    head_init: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainOutcome:
    """Fine-tune from ``base_dir``; ``log(step, split, **values)`` receives the loss curves.

    ``cached``: the (train, validation) rows' token states after the frozen layers
    (``states_cached`` with ``start = layers - config.train_layers``): each step then runs only the
    ``train_layers`` top layers and the head, the frozen part never again. ``head_init``: the
    head's starting (weight, bias), e.g. the frozen baseline's (a head that already separates the
    classes keeps the first steps from tearing at the top layers)."""
    started = time.monotonic()
    seed_everything(config.seed)
    device = device or torch.device("cpu")
    model, tokenizer = classifier_from_base(base_dir, max_len=config.max_len, dropout=config.dropout)
    model.to(device)
    layers_freeze(model, config.train_layers)
    if cached is not None:
        if config.train_layers < 0 or config.adversarial:
            raise ValueError("cached token states need frozen lower layers (train_layers >= 0) and no FGM")
        start = len(model.encoder_layers()) - config.train_layers
        if cached[0].start != start or cached[1].start != start:
            raise ValueError(f"the cached states are after layer {cached[0].start}, training needs layer {start}")
    if head_init is not None:
        with torch.no_grad():
            model.head.weight.copy_(torch.as_tensor(head_init[0], dtype=torch.float32))
            model.head.bias.copy_(torch.as_tensor(head_init[1], dtype=torch.float32))
    names = model.config.labels
    targets = [names.index(label) for label in train_labels]
    lengths = [len(t) for t in train_texts]

    steps_per_epoch = max(1, math.ceil(len(train_texts) / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    warmup = max(1, int(total_steps * config.warmup_fraction))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "layernorm.weight", "norm.weight")
    encoder_params = [(n, p) for n, p in model.encoder.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in encoder_params if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in encoder_params if n.endswith(no_decay)], "weight_decay": 0.0},
        {"params": list(model.head.parameters()), "weight_decay": 0.0, "lr": config.head_lr},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))),
    )
    groups = [g for g in groups if g["params"]]
    fgm = FGM(model.word_embeddings(), config.fgm_epsilon) if config.adversarial else None
    eval_every = max(1, steps_per_epoch // max(1, config.evals_per_epoch))
    rng = random.Random(config.seed)

    checkpoints: list[Checkpoint] = []
    history: list[dict] = []
    best_f1, since_best, step, stopped_early = -1.0, 0, 0, False
    running: list[float] = []

    def validation_metrics() -> dict:
        if cached is not None:
            return evaluate_states([model], cached[1].states, val_labels, start=start, device=device, amp_dtype=config.amp_dtype)
        return evaluate([model], tokenizer, val_texts, val_labels, device=device, amp_dtype=config.amp_dtype)

    def batch_loss(rows: list[int]) -> torch.Tensor:
        labels = torch.tensor([targets[i] for i in rows], device=device)
        if cached is not None:
            states, mask = states_pad([cached[0].states[i] for i in rows], device)
            with autocast(device, config.amp_dtype):
                return model.forward_from_states(states, mask, start=start, labels=labels)[1]
        batch = encode_batch(tokenizer, [train_texts[i] for i in rows], max_len=config.max_len, device=device)
        with autocast(device, config.amp_dtype):
            return model(**batch, labels=labels)[1]

    def validate() -> bool:
        nonlocal best_f1, since_best
        metrics = validation_metrics()
        model.train()
        entry = {"step": step, "epoch": round(step / steps_per_epoch, 3), "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
        history.append(entry)
        if log:
            log(step, "validation", accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"])
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        checkpoints.append(Checkpoint(step=step, epoch=entry["epoch"], state=state, validation=metrics))
        checkpoints.sort(key=lambda c: c.validation["macro_f1"], reverse=True)
        del checkpoints[max(1, config.ensemble) :]
        if metrics["macro_f1"] > best_f1:
            best_f1, since_best = metrics["macro_f1"], 0
        else:
            since_best += 1
        return since_best >= config.patience

    if config.evaluate_initial:
        metrics = validation_metrics()
        history.append({"step": 0, "epoch": 0.0, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
        if log:
            log(0, "validation", accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"])
    model.train()
    done = False
    for _epoch in range(config.epochs):
        for rows in _batches(list(range(len(train_texts))), lengths, config.batch_size, rng):
            if should_stop and should_stop():
                done = stopped_early = True
                break
            loss = batch_loss(rows)
            loss.backward()
            if fgm is not None and fgm.attack():
                batch = encode_batch(tokenizer, [train_texts[i] for i in rows], max_len=config.max_len, device=device)
                labels = torch.tensor([targets[i] for i in rows], device=device)
                with autocast(device, config.amp_dtype):
                    _, adversarial_loss = model(**batch, labels=labels)
                adversarial_loss.backward()
                fgm.restore()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running.append(loss.item())
            if log and step % config.log_every == 0:
                log(step, "train", loss=round(sum(running) / len(running), 5), lr=scheduler.get_last_lr()[0])
                running = []
            if progress:
                best = f"{best_f1:.3f}" if best_f1 >= 0 else "not measured yet"
                progress(step / total_steps, f"step {step}/{total_steps}, best validation macro-F1 {best}")
            if step % eval_every == 0 or step == total_steps:
                if validate():
                    done = stopped_early = True
                    break
            if step >= total_steps:
                done = True
                break
        if done:
            break
    if not history or history[-1]["step"] != step:
        validate()

    model.load_state_dict(checkpoints[0].state)
    model.eval()
    validation_ensemble = None
    if config.ensemble > 1 and len(checkpoints) > 1:
        validation_ensemble = evaluate(
            ensemble_models(model, checkpoints), tokenizer, val_texts, val_labels, device=device, amp_dtype=config.amp_dtype
        )
    return TrainOutcome(
        model=model,
        tokenizer=tokenizer,
        checkpoints=checkpoints,
        validation_best=checkpoints[0].validation,
        validation_ensemble=validation_ensemble,
        steps=step,
        seconds=time.monotonic() - started,
        stopped_early=stopped_early,
        history=history,
    )


def outcomes_merge(
    outcomes: list[TrainOutcome], *, val_texts: list[str], val_labels: list[str], device=None, amp_dtype: str = ""
) -> TrainOutcome:
    """Runs with different seeds as one outcome: the kept checkpoints of all runs, best first, and
    the validation of their averaged probabilities (a seed ensemble: independent runs disagree
    more than checkpoints of one run, so averaging them gains more)."""
    if len(outcomes) == 1:
        return outcomes[0]
    checkpoints = sorted(
        (c for outcome in outcomes for c in outcome.checkpoints), key=lambda c: c.validation["macro_f1"], reverse=True
    )
    best = max(outcomes, key=lambda o: o.validation_best["macro_f1"])
    model = best.model
    model.load_state_dict(checkpoints[0].state)
    validation_ensemble = evaluate(
        ensemble_models(model, checkpoints), best.tokenizer, val_texts, val_labels, device=device, amp_dtype=amp_dtype
    )
    return TrainOutcome(
        model=model,
        tokenizer=best.tokenizer,
        checkpoints=checkpoints,
        validation_best=checkpoints[0].validation,
        validation_ensemble=validation_ensemble,
        steps=sum(o.steps for o in outcomes),
        seconds=sum(o.seconds for o in outcomes),
        stopped_early=any(o.stopped_early for o in outcomes),
        history=[{**entry, "run": i} for i, o in enumerate(outcomes) for entry in o.history],
    )


def ensemble_models(model: SentimentClassifier, checkpoints: list[Checkpoint]) -> list[SentimentClassifier]:
    """One model per checkpoint (the first is ``model`` itself)."""
    members = [model]
    for checkpoint in checkpoints[1:]:
        member = SentimentClassifier(model.config).to(next(model.parameters()).device)
        member.load_state_dict(checkpoint.state)
        member.eval()
        members.append(member)
    return members


def artifact_save(directory: Path, *, outcome: TrainOutcome, ensemble: bool, extra: dict) -> list[str]:
    """Weights (one safetensors file per ensemble member), the tokenizer and ``classifier.json``
    (the model config, the member files and ``extra``: training options and metrics)."""
    import json

    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    members = outcome.checkpoints if ensemble else outcome.checkpoints[:1]
    files = []
    for i, checkpoint in enumerate(members):
        name = f"member-{i}.safetensors"
        save_file({k: v.contiguous() for k, v in checkpoint.state.items()}, str(directory / name))
        files.append(name)
    outcome.tokenizer.save_pretrained(str(directory))
    manifest = {"model": outcome.model.config.as_dict(), "members": files, **extra}
    (directory / "classifier.json").write_text(json.dumps(manifest, indent=2, default=str))
    return files


@model_building
def artifact_load(directory: Path | str, *, device=None) -> tuple[list[SentimentClassifier], object, dict]:
    """The ensemble (one or more members), tokenizer and manifest saved by ``artifact_save``."""
    import json

    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    directory = Path(directory)
    manifest = json.loads((directory / "classifier.json").read_text())
    config = SentimentConfig.from_dict(manifest["model"])
    device = device or torch.device("cpu")
    members = []
    for name in manifest["members"]:
        model = SentimentClassifier(config)
        model.load_state_dict(load_file(str(directory / name)))
        members.append(model.to(device).eval())
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return members, tokenizer, manifest
