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
from workers.runtime.intent import FAMILY, PURPOSE


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


def datasets_read(datasets: list[Dataset]) -> tuple[list[str], list[str], dict[str, int]]:
    from workers.train.intent import labelled_csv_read

    texts, labels, counts = [], [], {}
    for ds in datasets:
        t, lab = labelled_csv_read(ds.path, text_col=ds.text_col, label_col=ds.label_col)
        texts += t
        labels += lab
        counts[Path(ds.path).name] = len(t)
    return texts, labels, counts


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
        texts, labels, counts = datasets_read(datasets)
    except (DatasetError, ValueError) as exc:
        raise PermanentJobError(str(exc)) from None
    embedder = embedder_get()
    ctx.progress(0.02, f"embedding {len(texts)} texts")
    vectors, batch = [], 256
    for start in range(0, len(texts), batch):
        vectors.append(embedder.encode(texts[start : start + batch]))
        ctx.progress(0.02 + 0.5 * min(start + batch, len(texts)) / len(texts), f"embedded {min(start + batch, len(texts))}/{len(texts)}")
        if ctx.stop_reason():
            raise PermanentJobError("Stopped while embedding the training texts.")
    import numpy as np

    matrix = np.concatenate(vectors)
    embed_seconds = time.monotonic() - started
    config = IntentTrainConfig(
        epochs=params.get("epochs", 60),
        batch_size=params.get("batch_size", 128),
        lr=params.get("lr", 2e-3),
        patience=params.get("patience", 4),
        validation_fraction=params.get("validation_fraction", 0.1),
        seed=params.get("seed", 0),
    )
    model_config = IntentConfig(hidden=params.get("hidden", 512), dropout=params.get("dropout", 0.1))

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
            matrix, labels, model_config=model_config, config=config, on_epoch=on_epoch,
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
        config={"model": result.model.config.__dict__, "train": config.__dict__,
                "datasets": [d.__dict__ for d in datasets]},
        metrics=metrics,
        training_job_id=job_id if job_id and job_id != "local" else None,
    )
    text = (
        f"Intent classifier {registered.label}: {metrics['labels']} intents, validation accuracy "
        f"{metrics['validation_accuracy']:.4f}, macro-F1 {metrics['validation_macro_f1']:.4f} "
        f"({metrics['validation_rows']} held-out rows), best epoch {metrics['best_epoch']} of {metrics['epochs_run']}."
    )
    return JobResult(
        candidates=[CandidateResult(text=text, finish_reason="stop",
                                    metadata={"model_version": registered.label, "metrics": metrics})],
        model_version=registered.label,
        usage={"rows": len(texts), "seconds": metrics["total_seconds"]},
    )
