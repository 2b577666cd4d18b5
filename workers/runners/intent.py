"""Runner of the ``intent_train`` kind: embed the texts of every dataset with the process's MiniLM,
train the head (``workers.train.intent``), save it and register
``ModelVersion(family="intent", purpose="reply")``. Prediction lives in ``workers.runtime.intent``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.runner import CandidateResult, JobResult, RunnerContext
from workers.runtime.intent import BASELINE_DIR, FAMILY, PURPOSE

# What ``intent_train`` does without parameters: every encoder layer fine-tuned with a linear head
# started from the baseline, 5 epochs, the best kept (docs/benchmarks.md, "Intent detection": it beats
# the logistic regression on frozen embeddings on rows it never saw, where a head on frozen embeddings
# or the top 2 layers did not). ``encoder_layers`` 0 trains the MLP head on frozen embeddings.
DEFAULT_ENCODER_LAYERS = None  # all of the encoder's layers
DEFAULTS_FROZEN = {"epochs": 60, "batch_size": 128, "lr": 2e-3, "patience": 4, "hidden": 512}
DEFAULTS_FINE_TUNING = {"epochs": 5, "batch_size": 32, "lr": 1e-3, "encoder_lr": 5e-5, "patience": 5, "hidden": 0}


@dataclass(frozen=True)
class Dataset:
    path: str
    text_col: str
    label_col: str


def dataset_parse(spec: str) -> Dataset:
    """``"path:text column:label column"`` (the path may itself hold colons)."""
    path, _, rest = spec.rpartition(":")
    path2, _, text_col = path.rpartition(":")
    if not path2 or not text_col or not rest:
        raise ValueError(f"{spec!r} is not PATH:TEXT_COLUMN:LABEL_COLUMN")
    return Dataset(path=path2, text_col=text_col, label_col=rest)


def dataset_source(dataset: Dataset) -> str:
    """The name of a dataset's label space: its file name without the extension."""
    return Path(dataset.path).stem


def datasets_read(datasets: list[Dataset]) -> tuple[list[str], list[str], list[str], dict[str, int]]:
    """Texts, labels, each row's source (``dataset_source``) and the rows per file."""
    from workers.train.intent import labelled_csv_read

    texts, labels, sources, counts = [], [], [], {}
    for ds in datasets:
        t, lab = labelled_csv_read(ds.path, text_col=ds.text_col, label_col=ds.label_col)
        texts += t
        labels += lab
        sources += [dataset_source(ds)] * len(t)
        counts[Path(ds.path).name] = len(t)
    return texts, labels, sources, counts


def intent_train_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """Embed, train, save, register. Params as validated by ``generation.kinds.intent_train``."""
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )
    from workers.ml.intent import IntentConfig
    from workers.runtime.embeddings import embedder_get
    from workers.train.intent import DatasetError, IntentTrainConfig, intent_train

    started = time.monotonic()
    specs = params.get("datasets") or settings.GENAI_INTENT_DATASETS
    try:
        datasets = [dataset_parse(s) if isinstance(s, str) else Dataset(**s) for s in specs]
        texts, labels, sources, counts = datasets_read(datasets)
    except (DatasetError, ValueError) as exc:
        raise PermanentJobError(str(exc)) from None
    embedder = embedder_get()
    encoder_layers = params.get("encoder_layers", DEFAULT_ENCODER_LAYERS)
    if encoder_layers is None:
        encoder_layers = embedder.encoder_layer_count()
    if not 0 <= encoder_layers <= embedder.encoder_layer_count():
        raise PermanentJobError(f"encoder_layers must be 0 to {embedder.encoder_layer_count()} for {embedder.name}.")
    ctx.progress(0.02, f"embedding {len(texts)} texts")
    vectors, states, batch = [], [], 256
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        if encoder_layers:
            chunk_vectors, chunk_states = embedder.encode_with_states(
                chunk, layer=embedder.encoder_layer_count() - encoder_layers)
            vectors.append(chunk_vectors)
            states += chunk_states
        else:
            vectors.append(embedder.encode(chunk))
        ctx.progress(0.02 + 0.5 * min(start + batch, len(texts)) / len(texts), f"embedded {min(start + batch, len(texts))}/{len(texts)}")
        if ctx.stop_reason():
            raise PermanentJobError("Stopped while embedding the training texts.")
    import numpy as np

    from workers.runtime.device import device_amp_dtype

    matrix = np.concatenate(vectors)
    embed_seconds = time.monotonic() - started
    defaults = DEFAULTS_FINE_TUNING if encoder_layers else DEFAULTS_FROZEN
    config = IntentTrainConfig(
        epochs=params.get("epochs", defaults["epochs"]),
        batch_size=params.get("batch_size", defaults["batch_size"]),
        lr=params.get("lr", defaults["lr"]),
        patience=params.get("patience", defaults["patience"]),
        validation_fraction=params.get("validation_fraction", 0.1),
        seed=params.get("seed", 0),
        encoder_lr=params.get("encoder_lr", DEFAULTS_FINE_TUNING["encoder_lr"]),
        baseline=params.get("baseline", True),
        amp_dtype=device_amp_dtype() if encoder_layers else "",
    )
    model_config = IntentConfig(hidden=params.get("hidden", defaults["hidden"]), dropout=params.get("dropout", 0.1),
                                encoder_layers=encoder_layers, residual=params.get("residual", False),
                                encoder=embedder.encoder_config() if encoder_layers else {})

    def on_epoch(point: dict) -> None:
        ctx.metrics_log(point["step"], split="train", loss=point["train_loss"])
        ctx.metrics_log(
            point["step"],
            split="validation",
            loss=point["validation_loss"],
            accuracy=point["validation_accuracy"],
            macro_f1=point["validation_macro_f1"],
        )
        ctx.progress(
            0.52 + 0.45 * point["epoch"] / config.epochs,
            f"epoch {point['epoch']}: validation accuracy {point['validation_accuracy']:.3f}",
        )

    try:
        result = intent_train(
            matrix, labels, sources=sources, states=states or None,
            top_init=embedder.encoder_top_state(encoder_layers) if encoder_layers else None,
            model_config=model_config, config=config, on_epoch=on_epoch,
            should_stop=lambda: ctx.stop_reason() is not None,
        )
    except DatasetError as exc:
        raise PermanentJobError(str(exc)) from None
    if ctx.stop_reason() is not None:
        raise PermanentJobError(f"Stopped ({ctx.stop_reason()}) before the model was saved.", code=ctx.stop_reason())
    name = params.get("name", "intent")
    version = model_version_next_number(name=name)
    directory = model_version_artifact_dir(family=FAMILY, name=name, version=version)
    result.model.save(directory)
    baseline_dir = Path(directory) / BASELINE_DIR
    if result.baseline is not None:
        result.baseline.save(baseline_dir)
    elif baseline_dir.is_dir():  # left by an earlier artefact at this path: not this version's
        import shutil

        shutil.rmtree(baseline_dir)
    metrics = {**result.metrics, "embed_seconds": round(embed_seconds, 2), "rows_per_dataset": counts,
               "total_seconds": round(time.monotonic() - started, 2)}
    job_id = getattr(ctx, "job_id", None)
    registered = model_version_register(
        family=FAMILY,
        name=name,
        version=version,
        purpose=PURPOSE,
        artifact_path=directory,
        base_model=embedder.name,
        config={"model": {k: v for k, v in result.model.config.__dict__.items() if k != "encoder"},
                "train": config.__dict__, "datasets": [d.__dict__ for d in datasets]},
        metrics=metrics,
        training_job_id=job_id if job_id and job_id != "local" else None,
    )
    text = (
        f"Intent classifier {registered.label}: {metrics['labels']} intents, validation accuracy "
        f"{metrics['validation_accuracy']:.4f}, macro-F1 {metrics['validation_macro_f1']:.4f} "
        f"({metrics['validation_rows']} held-out rows), best epoch {metrics['best_epoch']} of {metrics['epochs_run']}."
    )
    if "baseline" in metrics:
        b = metrics["baseline"]
        text += (f" Linear baseline (logistic regression on the frozen embeddings, C={b['C']}, same split): "
                 f"accuracy {b['validation_accuracy']:.4f}, macro-F1 {b['validation_macro_f1']:.4f}.")
    return JobResult(
        candidates=[CandidateResult(text=text, finish_reason="stop",
                                    metadata={"model_version": registered.label, "metrics": metrics})],
        model_version=registered.label,
        usage={"rows": len(texts), "seconds": metrics["total_seconds"]},
    )
