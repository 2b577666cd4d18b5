"""The sentiment classifier in worker processes, and the runners of ``sentiment_train``,
``sentiment_score`` and ``alert_summary``.

The classifier that scores is a ``sentiment`` ModelVersion (GENAI_SENTIMENT_MODEL, else the
promoted one, else the newest ready one), re-resolved on every job, loaded once per process and
version, run in float32 on the worker's device under ``torch.inference_mode()``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.kinds import CandidateResult, JobResult
from generation.services.jobs import JobContext

logger = logging.getLogger(__name__)


@dataclass
class LoadedClassifier:
    label: str  # "finsent@3"
    members: list  # SentimentClassifier, one or more (an ensemble)
    tokenizer: object
    manifest: dict
    device: str
    lock: threading.Lock
    amp_dtype: str = ""  # "bfloat16": scored under autocast (the worker's dtype; float32 weights kept)

    def predict(self, texts: list[str], *, batch_size: int | None = None) -> list[dict]:
        """Per text: ``label``, ``probabilities`` {negative, neutral, positive} and ``score``."""
        from workers.train.sentiment import predict_probabilities

        with self.lock:  # the fast tokenizer is not safe across threads
            probabilities = predict_probabilities(
                self.members, self.tokenizer, texts, batch_size=batch_size or settings.GENAI_SENTIMENT_BATCH,
                amp_dtype=self.amp_dtype,
            )
        labels = self.members[0].config.labels
        out = []
        for row in probabilities:
            probs = {label: float(round(p, 6)) for label, p in zip(labels, row)}
            out.append(
                {
                    "label": max(probs, key=probs.get),
                    "probabilities": probs,
                    "score": round(probs["positive"] - probs["negative"], 6),
                }
            )
        return out


_loaded: dict[str, LoadedClassifier] = {}
_load_lock = threading.Lock()


def classifier_get(name: str | None = None) -> LoadedClassifier:
    """The classifier version ``name`` resolves to, loaded once per process."""
    from monitoring.services.scoring import sentiment_model_resolve

    version = sentiment_model_resolve(name)
    if version is None:
        raise PermanentJobError(
            "No sentiment model is trained yet: run a sentiment_train job (or manage.py sentiment_train).",
            code="no_model",
        )
    if version.label in _loaded:
        return _loaded[version.label]
    with _load_lock:
        if version.label not in _loaded:
            from workers.runtime.device import device_amp_dtype, device_get
            from workers.train.sentiment import artifact_load

            device = device_get().device
            amp_dtype = device_amp_dtype()
            path = Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path
            started = time.monotonic()
            members, tokenizer, manifest = artifact_load(path, device=device)
            logger.info("loaded sentiment classifier %s (%d member(s)) in %.2f s", version.label, len(members), time.monotonic() - started)
            _loaded[version.label] = LoadedClassifier(
                label=version.label, members=members, tokenizer=tokenizer, manifest=manifest, device=str(device),
                lock=threading.Lock(), amp_dtype=amp_dtype,
            )
    return _loaded[version.label]


# --- scoring --------------------------------------------------------------------------------


def sentiment_score_run(*, params: dict, ctx: JobContext) -> JobResult:
    """Score items not yet scored by the current version, batch by batch (each commits), then
    evaluate the alert rules."""
    from monitoring.selectors import news_unscored
    from monitoring.services.alerts import alert_rules_evaluate
    from monitoring.services.scoring import sentiment_scores_store

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
    evaluation = alert_rules_evaluate().as_dict() if params.get("evaluate", True) and done else None
    rate = done / seconds if seconds > 0 else 0.0
    return JobResult(
        candidates=[
            CandidateResult(
                text=f"Scored {done} items with {classifier.label} in {seconds:.1f} s ({rate:.1f} items/s).",
                finish_reason="stop",
                metadata={"scored": done, "model": classifier.label, "evaluation": evaluation},
            )
        ],
        model_version=classifier.label,
        usage={"items": done, "seconds": round(seconds, 3), "items_per_second": round(rate, 1)},
    )


# --- training -------------------------------------------------------------------------------


def _augment(*, texts: list[str], labels: list[str], per_class: int, seed: int) -> list[tuple[str, str]]:
    from generation.selectors import model_version_resolve

    try:
        from workers.runtime.genmodels import augment_examples
    except ImportError as exc:
        raise PermanentJobError(
            f"augment needs workers.runtime.genmodels.augment_examples (the VAE/GAN models), which cannot be imported: {exc}",
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


SENTIMENT_BASES = ("all-minilm-l6-v2", "smollm2")


def sentiment_base_dir(base: str) -> Path:
    """The weights a classifier starts from: all-MiniLM-L6-v2 (22M, the default: fast to train and
    to score) or ``smollm2``, the 135M decoder the service generates with (the converted GGUF),
    used as an encoder (mean-pooled hidden states): ~6x slower, more capacity. Another value
    (GENAI_SENTIMENT_BASE_MODEL only) is a local sentence-transformers/transformers directory."""
    if base == "smollm2":
        from workers.runtime.models import lm_prepare

        return lm_prepare("smollm2")
    from workers.runtime.embeddings import embed_model_path

    return embed_model_path(base)


def sentiment_train_run(*, params: dict, ctx: JobContext) -> JobResult:
    """Split (train / validation / held-out test), fine-tune, compare the options with plain
    training, save the artifact and register the model version."""
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )
    from workers.runtime.device import device_amp_dtype, device_get
    from workers.train.sentiment import (
        DatasetError,
        TrainConfig,
        artifact_save,
        dataset_read,
        ensemble_models,
        evaluate,
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

    extra: list[tuple[str, str]] = []
    if params.get("augment_per_class"):
        extra = _augment(texts=train_t, labels=train_l, per_class=params["augment_per_class"], seed=params["seed"])

    device = device_get().device
    base = params.get("base") or settings.GENAI_SENTIMENT_BASE_MODEL
    base_dir = sentiment_base_dir(base)
    config = TrainConfig(
        epochs=params["epochs"], batch_size=params["batch_size"], lr=params["lr"], head_lr=params.get("head_lr", 1e-3), max_len=params["max_len"],
        evals_per_epoch=params["evals_per_epoch"], patience=params["patience"], max_steps=params["max_steps"],
        adversarial=params["adversarial"], fgm_epsilon=params["fgm_epsilon"], ensemble=params["ensemble"], seed=params["seed"],
        evaluate_initial=params.get("evaluate_initial", False), train_layers=params.get("train_layers", -1),
        amp_dtype=device_amp_dtype(),
    )
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
    test_metrics = (
        evaluate(members, outcome.tokenizer, test_t, test_l, device=device, amp_dtype=config.amp_dtype) if test_t else None
    )
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
        "options": {"adversarial": config.adversarial, "ensemble": config.ensemble, "seeds": len(outcomes),
                    "augment_per_class": params.get("augment_per_class", 0),
                    "augmented_examples": len(extra)},
        "rows": {"train": len(train_t), "validation": len(val_t), "test": len(test_t)},
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
                "test_fraction": params["test_fraction"], "validation_fraction": params["validation_fraction"]},
        metrics=metrics, base_model=base, training_job_id=ctx.job_id,
    )
    parts = [f"{version.label}: validation accuracy {validation['accuracy']:.3f}, macro-F1 {validation['macro_f1']:.3f}"]
    if test_metrics:
        parts.append(f"held-out test accuracy {test_metrics['accuracy']:.3f}, macro-F1 {test_metrics['macro_f1']:.3f} (n={test_metrics['n']})")
    if plain:
        parts.append(f"plain training: validation macro-F1 {plain.validation_best['macro_f1']:.3f}"
                     + (f", held-out {metrics['test_plain']['macro_f1']:.3f}" if metrics["test_plain"] else ""))
    if outcome.validation_ensemble:
        parts.append(f"ensemble of {len(outcome.checkpoints)}: {outcome.validation_ensemble['macro_f1']:.3f} vs best checkpoint {outcome.validation_best['macro_f1']:.3f}")
    return JobResult(
        candidates=[CandidateResult(text="; ".join(parts) + ".", finish_reason="stop", metadata={"model_version": version.label, **metrics})],
        model_version=version.label,
        usage={"steps": outcome.steps, "seconds": round(time.monotonic() - started, 1), "device": str(device)},
    )


# --- alert summaries ------------------------------------------------------------------------

SUMMARY_SYSTEM = (
    "You are a financial news analyst. Summarise news items for a risk desk in 2 to 4 short sentences. "
    "After each fact, cite the item it comes from by its id in square brackets, like [#12]. Use only the ids given."
)


def alert_summary_prompt(*, entity: str, items: list) -> list[dict]:
    listing = "\n".join(f"[#{i.pk}] ({i.sentiment_label}) {' '.join(i.text.split())[:300]}" for i in items)
    subject = "the market" if entity == "*" else entity
    return [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {"role": "user", "content": f"News items about {subject}:\n{listing}\n\nWhy is sentiment about {subject} negative? "
                                    "Answer in 2 to 4 sentences citing the ids like [#12]."},
    ]


def alert_summary_run(*, params: dict, ctx: JobContext) -> JobResult:
    """The LM's summary if it cites only the alert's items, else the extractive one."""
    from monitoring.models import Alert, NewsItem
    from monitoring.services.summaries import (
        alert_summary_extractive,
        alert_summary_store,
        sentences_split,
        summary_validate,
    )
    from workers.ml.decoding import SamplingParams
    from workers.runtime.models import chat_input_ids, lm_get
    from workers.runtime.text import completions_run

    alert = Alert.objects.filter(pk=params["alert_id"]).first()
    if alert is None:
        raise PermanentJobError(f"Alert {params['alert_id']} no longer exists.", code="not_found")
    items_by_id = NewsItem.objects.in_bulk(alert.item_ids)
    items = [items_by_id[i] for i in alert.item_ids if i in items_by_id]
    allowed = {i.pk for i in items}
    lm = lm_get()
    ids = chat_input_ids(lm.tokenizer, prompt=None, messages=alert_summary_prompt(entity=alert.entity, items=items))
    sampling = SamplingParams(
        max_new_tokens=settings.GENAI_ALERT_SUMMARY_MAX_NEW_TOKENS, temperature=0.0, repetition_penalty=1.2, n=1, stop=("\n\n",)
    )
    completion = completions_run(lm, ids, sampling, ctx)[0]
    generated = " ".join(completion.text.split())
    candidate = " ".join(sentences_split(generated)[:4])
    valid, cited, reason = summary_validate(candidate, allowed_ids=allowed) if items else (False, [], "no items")
    if valid:
        text, method = candidate, "model"
    else:
        text, cited = alert_summary_extractive(item_ids=alert.item_ids)
        method = "extractive"
    alert_summary_store(alert_id=alert.pk, text=text, cited=cited, method=method)
    return JobResult(
        candidates=[
            CandidateResult(
                text=text,
                finish_reason=completion.finish_reason,
                prompt_tokens=len(ids),
                completion_tokens=completion.completion_tokens,
                metadata={"alert_id": alert.pk, "method": method, "cited_item_ids": cited, "model_text": generated,
                          "rejected_because": reason},
            )
        ],
        model_version=lm.version,
        usage={"prompt_tokens": len(ids), "completion_tokens": completion.completion_tokens},
    )
