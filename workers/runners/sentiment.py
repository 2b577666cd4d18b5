"""Runners of ``sentiment_score`` (score the unscored news items with the current classifier,
then hand over to monitoring: ``sentiment_scoring_finished``) and ``sentiment_train`` (split,
fine-tune, compare the options with plain training on held-out rows, register the version).
The classifier itself is loaded by ``workers.runtime.sentiment``."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.runner import CandidateResult, JobResult, RunnerContext
from workers.runtime.sentiment import classifier_get


def sentiment_score_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """Score items not yet scored by the current version, batch by batch (each commits), then
    hand over to monitoring (``sentiment_scoring_finished`` queues the alert rules' evaluation)."""
    from monitoring.selectors import news_unscored
    from monitoring.services.scoring import sentiment_scores_store, sentiment_scoring_finished

    started = time.monotonic()
    classifier = classifier_get(params.get("model") or None)
    batch = params.get("batch_size") or settings.GENAI_SENTIMENT_BATCH
    pending = news_unscored(version=classifier.label, rescore=params.get("rescore", False))
    total = pending.count()
    done, after_id = 0, 0
    ctx.progress(0.0, f"0/{total} items scored")
    while not ctx.stop_reason():
        rows = list(pending.filter(pk__gt=after_id).order_by("pk").values_list("pk", "title", "text")[:batch])
        if not rows:
            break
        predictions = classifier.predict([f"{title}. {text}" if title and title not in text else text for _, title, text in rows])
        sentiment_scores_store(version=classifier.label, rows=[(pk, p["probabilities"]) for (pk, _, _), p in zip(rows, predictions)])
        after_id = rows[-1][0]
        done += len(rows)
        ctx.progress(min(done / total, 1.0) if total else 1.0, f"{done}/{total} items scored")
    seconds = time.monotonic() - started
    evaluation_queued = sentiment_scoring_finished(version=classifier.label, scored=done, evaluate=params.get("evaluate", True))
    rate = done / seconds if seconds > 0 else 0.0
    return JobResult(
        candidates=[
            CandidateResult(
                text=f"Scored {done} items with {classifier.label} in {seconds:.1f} s ({rate:.1f} items/s).",
                finish_reason="stop",
                metadata={"scored": done, "model": classifier.label, "evaluation_queued": evaluation_queued},
            )
        ],
        model_version=classifier.label,
        usage={"items": done, "seconds": round(seconds, 3), "items_per_second": round(rate, 1)},
    )


def _augment(*, texts: list[str], labels: list[str], per_class: int, seed: int) -> list[tuple[str, str]]:
    from generation.selectors import model_version_resolve

    try:
        from workers.runners.genmodels import augment_examples
    except ImportError as exc:
        raise PermanentJobError(
            f"augment needs workers.runners.genmodels.augment_examples (the VAE/GAN models), which cannot be imported: {exc}",
            code="augment_unavailable",
        ) from None
    if model_version_resolve(family="vae") is None:
        raise PermanentJobError(
            "augment needs a trained VAE model version (family vae); train one first.", code="augment_unavailable"
        )
    try:
        examples = augment_examples(texts=texts, labels=labels, per_class=per_class, seed=seed)
    except PermanentJobError:
        raise
    except Exception as exc:  # noqa: BLE001 - the generator's own failure, reported as such
        raise PermanentJobError(f"augment failed in the VAE/GAN helper: {type(exc).__name__}: {exc}", code="augment_failed") from exc
    return [(text, label) for text, label in examples if text and label in set(labels)]


SENTIMENT_BASES = ("all-minilm-l6-v2", "all-mpnet-base-v2", "smollm2")


def sentiment_base_dir(base: str) -> Path:
    """The weights a classifier starts from: all-MiniLM-L6-v2 (22M, fast to train and to score),
    all-mpnet-base-v2 (110M, a stronger sentence encoder, assembled once from its packages:
    ``workers.runtime.mpnet``) or ``smollm2``, the 135M decoder the service generates with (the
    converted GGUF), used as an encoder (mean-pooled hidden states). Another value
    (GENAI_SENTIMENT_BASE_MODEL only) is a local sentence-transformers/transformers directory."""
    if base == "smollm2":
        from generation.lm import lm_prepare

        return lm_prepare("smollm2")
    from workers.runtime.embeddings import embed_model_path

    return embed_model_path(base)


@dataclass
class StatesForTraining:
    train: object  # workers.train.sentiment.CachedStates
    validation: object
    test: object
    head_init: tuple  # the frozen baseline's linear map as the head's (weight, bias)
    baseline: dict  # the frozen baseline's figures: validation (C chosen there) and held-out test
    encoding: dict  # texts encoded by this job vs read from the cache, seconds


def _states_prepare(*, config, base_dir: Path, device, ctx: RunnerContext, splits) -> StatesForTraining:
    """The token states below the trained layers for every split, from the disk cache
    (GENAI_SENTIMENT_STATE_CACHE_DIR) or encoded once and cached, and the frozen baseline fitted
    on the pooled vectors of the same split: a logistic regression, the figures it reaches without
    any fine-tuning, reported beside the model's."""

    from workers.train.sentiment import (
        baseline_evaluate,
        baseline_head,
        classifier_from_base,
        encoder_key,
        frozen_baseline,
        states_cached,
    )

    model, tokenizer = classifier_from_base(base_dir, max_len=config.max_len, dropout=config.dropout)
    model.to(device)
    start = len(model.encoder_layers()) - config.train_layers
    key = encoder_key(base_dir)
    total = sum(len(texts) for texts, _ in splits)
    done = 0
    results = []
    for texts, _ in splits:
        def progress(n: int, of: int, before: int = done) -> None:
            ctx.progress(0.0, f"encoding with the frozen encoder: {before + n} of {total} texts (cached for re-runs)")

        results.append(states_cached(
            model, tokenizer, texts, cache_dir=settings.GENAI_SENTIMENT_STATE_CACHE_DIR, key=key, start=start,
            device=device, amp_dtype=config.amp_dtype, progress=progress,
        ))
        done += len(texts)
    del model
    (train_t, train_l), (val_t, val_l), (test_t, test_l) = splits
    pipeline, validation = frozen_baseline(results[0].pooled, train_l, results[1].pooled, val_l, seed=config.seed)
    test = baseline_evaluate(pipeline, results[2].pooled, test_l) if test_t else None
    brief = lambda m: None if m is None else {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}  # noqa: E731
    return StatesForTraining(
        train=results[0], validation=results[1], test=results[2],
        head_init=baseline_head(pipeline, results[0].pooled.shape[1]),
        baseline={"kind": "logistic regression on the frozen encoder's mean-pooled vectors", "C": validation["C"],
                  "validation": brief(validation), "test": brief(test)},
        encoding={"key": key, "layer": start, "encoded": sum(r.computed for r in results), "texts": total,
                  "seconds": round(sum(r.seconds for r in results), 1)},
    )


def sentiment_train_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    """Split (train / validation / held-out test), fine-tune, compare the options with plain
    training, save the artifact and register the model version."""
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )
    from workers.ml.sentiment import text_normalise
    from workers.runtime.device import device_amp_dtype, device_get
    from workers.train.sentiment import (
        DatasetError,
        TrainConfig,
        artifact_save,
        dataset_read,
        ensemble_models,
        evaluate,
        evaluate_states,
        label_map_parse,
        outcomes_merge,
        rows_subset,
        split_stratified,
        train_classifier,
    )

    started = time.monotonic()
    csv_path = params.get("csv") or settings.GENAI_SENTIMENT_TRAIN_CSV
    try:
        texts, labels = dataset_read(
            csv_path, text_col=params["text_col"], label_col=params["label_col"], label_map=label_map_parse(params["label_map"])
        )
    except (DatasetError, OSError) as exc:
        raise PermanentJobError(f"Training data {csv_path}: {exc}", code="invalid_input") from None
    texts, labels = rows_subset(texts, labels, max_rows=params.get("max_rows", 0), seed=params["seed"])
    train_idx, val_idx, test_idx = split_stratified(
        labels, test_fraction=params["test_fraction"], validation_fraction=params["validation_fraction"], seed=params["seed"]
    )
    if not train_idx or not val_idx:
        raise PermanentJobError("Too few rows for a training and a validation split.", code="invalid_input")
    pick = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
    train_t, train_l = pick(train_idx)
    val_t, val_l = pick(val_idx)
    test_t, test_l = pick(test_idx)

    if params.get("extra_train_csv"):
        try:
            more_t, more_l = dataset_read(params["extra_train_csv"], text_col="text", label_col="label", label_map={})
        except (DatasetError, OSError) as exc:
            raise PermanentJobError(f"extra_train_csv {params['extra_train_csv']}: {exc}", code="invalid_input") from None
        held = {text_normalise(t) for t in val_t + test_t}
        kept = [(t, label) for t, label in zip(more_t, more_l) if text_normalise(t) not in held]
        train_t, train_l = train_t + [t for t, _ in kept], train_l + [label for _, label in kept]

    extra: list[tuple[str, str]] = []
    if params.get("augment_per_class"):
        extra = _augment(texts=train_t, labels=train_l, per_class=params["augment_per_class"], seed=params["seed"])

    device = device_get().device
    base = params.get("base") or settings.GENAI_SENTIMENT_BASE_MODEL
    try:
        base_dir = sentiment_base_dir(base)
    except RuntimeError as exc:  # the base's package is not installed here
        raise PermanentJobError(f"base {base!r}: {exc}", code="invalid_input") from None
    train_layers = params.get("train_layers")
    if train_layers is None:
        train_layers = settings.GENAI_SENTIMENT_TRAIN_LAYERS.get(base, -1)
    config = TrainConfig(
        epochs=params["epochs"], batch_size=params["batch_size"], lr=params["lr"], head_lr=params.get("head_lr", 1e-3), max_len=params["max_len"],
        evals_per_epoch=params["evals_per_epoch"], patience=params["patience"], max_steps=params["max_steps"],
        adversarial=params["adversarial"], fgm_epsilon=params["fgm_epsilon"], ensemble=params["ensemble"], seed=params["seed"],
        evaluate_initial=params.get("evaluate_initial", False), train_layers=train_layers,
        amp_dtype=device_amp_dtype(),
    )
    cache = _states_prepare(
        config=config, base_dir=base_dir, device=device, ctx=ctx, splits=((train_t, train_l), (val_t, val_l), (test_t, test_l)),
    ) if config.train_layers >= 0 and not config.adversarial and not extra else None
    options_on = bool(config.adversarial or extra)
    runs = 2 if options_on and params.get("compare_plain", True) else 1
    reserve = 60.0  # seconds kept for the final evaluations, saving and registering

    def should_stop() -> bool:
        return ctx.stop_reason() is not None or time.monotonic() > ctx.deadline - reserve

    def train(cfg: TrainConfig, rows_t: list[str], rows_l: list[str], split: str, run: int):
        return train_classifier(
            base_dir=base_dir, train_texts=rows_t, train_labels=rows_l, val_texts=val_t, val_labels=val_l,
            config=cfg, device=device,
            log=lambda step, which, **values: ctx.metrics_log(step, split=f"{which}{split}"[:16], **values),
            progress=lambda fraction, message: ctx.progress((run + fraction) / runs, message),
            should_stop=should_stop,
            cached=(cache.train, cache.validation) if cache else None,
            head_init=cache.head_init if cache and cfg.train_layers > 0 else None,
        )

    seeds = params.get("seeds", 1)
    runs += seeds - 1
    plain = None
    if options_on and params.get("compare_plain", True):
        plain = train(replace(config, adversarial=False), train_t, train_l, "_plain", 0)
    outcomes = []
    for i in range(seeds):
        if i and should_stop():
            break
        outcomes.append(train(
            replace(config, seed=config.seed + i), train_t + [t for t, _ in extra], train_l + [label for _, label in extra],
            f"_seed{i}" if seeds > 1 else "", runs - seeds + i,
        ))
    outcome = outcomes_merge(outcomes, val_texts=val_t, val_labels=val_l, device=device, amp_dtype=config.amp_dtype)
    if ctx.stop_reason() == "cancelled":
        raise PermanentJobError("Cancelled during training.", code="cancelled")

    use_ensemble = bool(
        outcome.validation_ensemble and outcome.validation_ensemble["macro_f1"] >= outcome.validation_best["macro_f1"]
    )
    members = ensemble_models(outcome.model, outcome.checkpoints) if use_ensemble else [outcome.model]
    if not test_t:
        test_metrics = None
    elif cache:
        test_metrics = evaluate_states(members, cache.test.states, test_l, start=cache.test.start, device=device, amp_dtype=config.amp_dtype)
    else:
        test_metrics = evaluate(members, outcome.tokenizer, test_t, test_l, device=device, amp_dtype=config.amp_dtype)
    validation = outcome.validation_ensemble if use_ensemble else outcome.validation_best

    def brief(m: dict | None) -> dict | None:
        return None if m is None else {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}

    metrics = {
        "validation": validation,
        "test": test_metrics,
        "validation_best_checkpoint": brief(outcome.validation_best),
        "validation_ensemble": brief(outcome.validation_ensemble),
        "ensemble_used": use_ensemble,
        "validation_plain": brief(plain.validation_best) if plain else None,
        "test_plain": brief(evaluate([plain.model], plain.tokenizer, test_t, test_l, device=device, amp_dtype=config.amp_dtype))
        if plain and test_t else None,
        "baseline": cache.baseline if cache else None,
        "encoding": cache.encoding if cache else None,
        "options": {"adversarial": config.adversarial, "ensemble": config.ensemble, "seeds": len(outcomes),
                    "augment_per_class": params.get("augment_per_class", 0),
                    "augmented_examples": len(extra)},
        "rows": {"train": len(train_t), "validation": len(val_t), "test": len(test_t),
                 "extra_train": len(train_t) - len(train_idx)},
        "history": outcome.history,
        "steps": outcome.steps,
        "stopped_early": outcome.stopped_early,
        "train_seconds": round(outcome.seconds, 1),
    }
    name = params["name"]
    number = model_version_next_number(name=name)
    directory = model_version_artifact_dir(family="sentiment", name=name, version=number)
    artifact_save(directory, outcome=outcome, ensemble=use_ensemble, extra={"train": asdict(config), "history": outcome.history, "metrics": metrics})
    version = model_version_register(
        family="sentiment", name=name, version=number, purpose="sentiment", artifact_path=directory,
        config={"train": asdict(config), "base": base, "csv": str(csv_path), "text_col": params["text_col"], "label_col": params["label_col"],
                "label_map": params["label_map"], "max_rows": params.get("max_rows", 0), "seed": params["seed"],
                "extra_train_csv": params.get("extra_train_csv", ""),
                "test_fraction": params["test_fraction"], "validation_fraction": params["validation_fraction"]},
        metrics=metrics, base_model=base, training_job_id=ctx.job_id,
    )
    promotion = ""
    if params.get("promote_if_better"):
        promotion = _promote_if_better(version=version, owner_id=ctx.owner_id)
    parts = [f"{version.label}: validation accuracy {validation['accuracy']:.3f}, macro-F1 {validation['macro_f1']:.3f}"]
    if test_metrics:
        parts.append(f"held-out test accuracy {test_metrics['accuracy']:.3f}, macro-F1 {test_metrics['macro_f1']:.3f} (n={test_metrics['n']})")
    if cache and cache.baseline["test"]:
        parts.append(f"frozen-encoder baseline (logistic regression) held-out accuracy {cache.baseline['test']['accuracy']:.3f}, "
                     f"macro-F1 {cache.baseline['test']['macro_f1']:.3f}")
    if plain:
        parts.append(f"plain training: validation macro-F1 {plain.validation_best['macro_f1']:.3f}"
                     + (f", held-out {metrics['test_plain']['macro_f1']:.3f}" if metrics["test_plain"] else ""))
    if outcome.validation_ensemble:
        parts.append(f"ensemble of {len(outcome.checkpoints)}: {outcome.validation_ensemble['macro_f1']:.3f} vs best checkpoint {outcome.validation_best['macro_f1']:.3f}")
    if promotion:
        parts.append(promotion)
    return JobResult(
        candidates=[CandidateResult(
            text="; ".join(parts) + ".", finish_reason="stop",
            metadata={"model_version": version.label, "promotion": promotion, **metrics},
        )],
        model_version=version.label,
        usage={"steps": outcome.steps, "seconds": round(time.monotonic() - started, 1), "device": str(device)},
    )


# What must be equal for two classifiers' validation figures to be compared: the same rows split the same way.
SPLIT_KEYS = ("csv", "text_col", "label_col", "label_map", "max_rows", "seed", "test_fraction", "validation_fraction")


def _promote_if_better(*, version, owner_id: int | None) -> str:
    from django.contrib.auth import get_user_model

    from generation.services.model_versions import model_version_promote_if_better

    owner = get_user_model().objects.filter(pk=owner_id).first() if owner_id else None
    if owner is None:
        return "not promoted: the job has no owner"
    _, sentence = model_version_promote_if_better(version=version, user=owner, metric="macro_f1", split_keys=SPLIT_KEYS)
    return sentence
