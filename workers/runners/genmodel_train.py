"""Training orchestration of the VAE and its latent GAN (the ``genmodel_train`` kind): read the
corpus (a CSV column, inline texts or the knowledge base), split it into training sentences,
train the VAE then the GAN (``workers.train.genmodels``), save the checkpoints and register both
model versions; ``gan_retrain`` trains a new GAN for an existing VAE."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.privacy import pii_mask
from generation.runner import CandidateResult, JobResult, RunnerContext
from generation.text.tables import CsvError, csv_read
from workers.ml.text_metrics import text_hash
from workers.runtime.genmodels import _device, genmodel_get, genmodel_versions
from workers.train.genmodels import (
    GAN_FILE,
    VAE_FILE,
    GANTrainConfig,
    VAETrainConfig,
    corpus_sentences,
    gan_checkpoint_save,
    gan_train,
    vae_checkpoint_save,
    vae_reconstruction_bleu,
    vae_train,
)


def csv_rows(*, path: str = "", content: str = "", max_rows: int) -> tuple[list[dict[str, str]], list[str]]:
    """Rows (dicts) and header of a CSV file or inline CSV text; at most ``max_rows`` rows."""
    try:
        table = csv_read(path or None, content=content, max_rows=max_rows)
    except CsvError as exc:
        raise PermanentJobError(f"Cannot read the CSV: {exc}", code="invalid_input") from None
    return table.rows, table.columns


def _columns_check(header: list[str], columns: Sequence[str], *, source: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise PermanentJobError(
            f"The CSV {source} has no column {', '.join(map(repr, missing))}; its columns: {', '.join(header)}.",
            code="invalid_input",
        )


def corpus_load(params: dict) -> tuple[list[str], str]:
    """The training texts a genmodel_train job's params name, masked: (texts, description)."""
    if params.get("texts"):
        texts, source = list(params["texts"]), f"{len(params['texts'])} inline texts"
    else:
        path = params.get("csv") or ("" if params.get("csv_content") else settings.GENAI_GENMODEL_DEFAULT_CSV)
        columns = params.get("text_cols") or (
            list(settings.GENAI_GENMODEL_DEFAULT_TEXT_COLS) if not params.get("csv") and not params.get("csv_content") else ["text"]
        )
        rows, header = csv_rows(path=path, content=params.get("csv_content", ""), max_rows=settings.GENAI_GENMODEL_MAX_SENTENCES)
        source = Path(path).name if path else "the uploaded CSV"
        _columns_check(header, columns, source=source)
        texts = [row[c] or "" for row in rows for c in columns]
        source = f"{source} ({', '.join(columns)}, {len(rows)} rows)"
    return [pii_mask(t).text for t in texts], source


@dataclass
class GenModelTrainOutcome:
    vae: Any  # ModelVersion
    gan: Any  # ModelVersion
    metrics: dict[str, Any]


def _training_sentences(texts: Sequence[str], *, max_words: int, seed: int) -> list[str]:
    sentences = corpus_sentences(texts, max_words=max_words)
    if len(sentences) > settings.GENAI_GENMODEL_MAX_SENTENCES:
        sentences = random.Random(seed).sample(sentences, settings.GENAI_GENMODEL_MAX_SENTENCES)
    if len(sentences) < settings.GENAI_GENMODEL_MIN_SENTENCES:
        raise PermanentJobError(
            f"The corpus has {len(sentences)} usable sentences (3 to {max_words} words, deduplicated); "
            f"at least {settings.GENAI_GENMODEL_MIN_SENTENCES} are needed (GENAI_GENMODEL_MIN_SENTENCES).",
            code="invalid_input",
        )
    return sentences


def genmodel_train(
    *,
    texts: Sequence[str],
    name: str,
    purpose: str,
    vae_config: VAETrainConfig,
    gan_config: GANTrainConfig,
    max_words: int = 30,
    validation_fraction: float = 0.1,
    max_seconds: float | None = None,
    corpus: str = "",
    log=lambda step, split, **values: None,
    progress=lambda fraction, message: None,
    should_stop=lambda: False,
    training_job_id: Any = None,
    created_by: Any = None,
) -> GenModelTrainOutcome | None:
    """Train a VAE then a GAN on ``texts`` and register both versions. None when stopped."""
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )

    sentences = _training_sentences(texts, max_words=max_words, seed=vae_config.seed)
    budget = max_seconds if max_seconds is not None else settings.GENAI_GENMODEL_TRAIN_MAX_SECONDS
    if budget and not vae_config.max_seconds:
        vae_config.max_seconds = 0.8 * budget
    device = _device()
    started = time.monotonic()
    vae = vae_train(
        sentences,
        config=vae_config,
        validation_fraction=validation_fraction,
        device=device,
        log=log,
        progress=lambda fraction, message: progress(0.8 * fraction, message),
        should_stop=should_stop,
    )
    if should_stop():
        return None
    bleu_texts = vae.valid_texts[:500]
    vae.metrics["validation"]["recon_bleu"] = vae_reconstruction_bleu(vae.model, vae.tokenizer, bleu_texts)
    if budget and not gan_config.max_seconds:
        gan_config.max_seconds = max(10.0, budget - (time.monotonic() - started))
    gan = gan_train(
        vae.model,
        vae.tokenizer,
        vae.train_texts,
        vae.valid_texts,
        config=gan_config,
        device=device,
        log=lambda step, split, **values: log(step, "gan", **values),
        progress=lambda fraction, message: progress(0.8 + 0.2 * fraction, message),
        should_stop=should_stop,
    )
    if should_stop():
        return None

    vae_number = model_version_next_number(name=name)
    vae_dir = model_version_artifact_dir(family="vae", name=name, version=vae_number)
    vae_label = f"{name}@{vae_number}"
    vae_checkpoint_save(vae_dir / VAE_FILE, vae, extra={"corpus": corpus})
    vae_row = model_version_register(
        family="vae",
        name=name,
        version=vae_number,
        purpose=purpose,
        artifact_path=vae_dir,
        config={**asdict(vae_config), "corpus": corpus, "max_words": max_words, "validation_fraction": validation_fraction},
        metrics=vae.metrics,
        training_job_id=training_job_id,
        created_by=created_by,
    )
    gan_row = _gan_register(gan, vae_label=vae_label, purpose=purpose, training_job_id=training_job_id, created_by=created_by)
    return GenModelTrainOutcome(vae=vae_row, gan=gan_row, metrics={"vae": vae.metrics, "gan": gan.metrics})


def _gan_register(gan, *, vae_label: str, purpose: str, training_job_id: Any, created_by: Any):
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )

    gan_name = f"{vae_label.split('@')[0]}-gan"
    gan_number = model_version_next_number(name=gan_name)
    gan_dir = model_version_artifact_dir(family="gan", name=gan_name, version=gan_number)
    gan_checkpoint_save(gan_dir / GAN_FILE, gan, vae_label=vae_label)
    return model_version_register(
        family="gan",
        name=gan_name,
        version=gan_number,
        purpose=purpose,
        artifact_path=gan_dir,
        config={**asdict(gan.config), "vae": vae_label},
        metrics=gan.metrics,
        base_model=vae_label,
        training_job_id=training_job_id,
        created_by=created_by,
    )


def gan_retrain(
    *,
    vae_name: str,
    texts: Sequence[str],
    gan_config: GANTrainConfig,
    log=lambda step, split, **values: None,
    progress=lambda fraction, message: None,
    should_stop=lambda: False,
    training_job_id: Any = None,
    created_by: Any = None,
) -> GenModelTrainOutcome | None:
    """Train a new GAN on an existing VAE version (``name`` or ``name@N``) and register it (the
    VAE's newest GAN from then on, unless another is promoted): for trying GAN settings without
    training the VAE again. ``texts`` must be the VAE's corpus: its sentences are selected and
    split as the VAE's training did (the VAE's seed, word limit and validation fraction), and the
    job fails unless the training split is the VAE's own (by the sentence hashes it stored)."""
    from workers.train.genmodels import corpus_split

    vae_row, _ = genmodel_versions(name=vae_name)
    if vae_row is None:
        raise PermanentJobError(f"No ready VAE model version named {vae_name!r}.", code="unknown_model")
    model = genmodel_get(name=vae_row.label)
    seed = vae_row.config.get("seed", 0)
    sentences = _training_sentences(texts, max_words=vae_row.config.get("max_words", 30), seed=seed)
    train_texts, valid_texts = corpus_split(
        sentences, validation_fraction=vae_row.config.get("validation_fraction", 0.1), seed=seed
    )
    known = sum(text_hash(t) in model.train_text_hashes for t in train_texts)
    if known < 0.99 * len(train_texts) or len(train_texts) < 0.99 * len(model.train_text_hashes):
        raise PermanentJobError(
            f"This corpus is not the one {vae_row.label} was trained on ({known} of its {len(train_texts)} training "
            f"sentences are the VAE's, which had {len(model.train_text_hashes)}); pass the VAE's own corpus.",
            code="invalid_input",
        )
    gan = gan_train(
        model.vae, model.tokenizer, train_texts, valid_texts, config=gan_config, device=model.device,
        log=lambda step, split, **values: log(step, "gan", **values), progress=progress, should_stop=should_stop,
    )
    if should_stop():
        return None
    gan_row = _gan_register(gan, vae_label=vae_row.label, purpose=vae_row.purpose, training_job_id=training_job_id,
                            created_by=created_by)
    return GenModelTrainOutcome(vae=vae_row, gan=gan_row, metrics={"vae": vae_row.metrics, "gan": gan.metrics})


def genmodel_train_run(*, params: dict, ctx: RunnerContext) -> JobResult:

    texts, corpus = corpus_load(params)
    vae_config = VAETrainConfig(
        **{k: params[k] for k in ("latent_dim", "hidden_dim", "embed_dim", "vocab_size", "batch_size", "lr",
                                   "word_dropout", "kl_schedule", "kl_warmup_steps", "free_bits", "patience",
                                   "eval_every", "max_steps") if k in params},
        max_epochs=params.get("epochs", VAETrainConfig.max_epochs),
        seed=params.get("seed", 0),
    )
    gan_config = GANTrainConfig(
        steps=params.get("gan_steps", GANTrainConfig.steps),
        n_critic=params.get("n_critic", GANTrainConfig.n_critic),
        diversity_weight=params.get("gan_diversity_weight", settings.GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT),
        seed=params.get("seed", 0),
    )
    remaining = ctx.deadline - time.monotonic() - 30.0
    budget = min(params.get("max_seconds") or settings.GENAI_GENMODEL_TRAIN_MAX_SECONDS, max(10.0, remaining))
    owner = _user(ctx.owner_id)
    if params.get("gan_only_for"):
        gan_config.max_seconds = budget
        outcome = gan_retrain(
            vae_name=params["gan_only_for"], texts=texts, gan_config=gan_config, log=ctx.metrics_log, progress=ctx.progress,
            should_stop=lambda: ctx.stop_reason() is not None, training_job_id=ctx.job_id, created_by=owner,
        )
        if outcome is None:
            return JobResult(candidates=[], model_version="")
        g = outcome.metrics["gan"]
        summary = (f"Trained {outcome.gan.label} (GAN) on the latents of {outcome.vae.label}: {g['steps']} steps, "
                   f"validation Wasserstein estimate {g['validation_wasserstein']:.3f}.")
        return JobResult(
            candidates=[CandidateResult(text=summary, finish_reason="stop", metadata={
                "vae_version": outcome.vae.label, "gan_version": outcome.gan.label, "corpus": corpus, "gan": g})],
            model_version=outcome.vae.label,
            usage={"gan_steps": g["steps"]},
        )
    outcome = genmodel_train(
        texts=texts,
        name=params["name"],
        purpose=params.get("purpose", settings.GENAI_GENMODEL_PURPOSE),
        vae_config=vae_config,
        gan_config=gan_config,
        max_words=params.get("max_words", 30),
        validation_fraction=params.get("validation_fraction", 0.1),
        max_seconds=budget,
        corpus=corpus,
        log=ctx.metrics_log,
        progress=ctx.progress,
        should_stop=lambda: ctx.stop_reason() is not None,
        training_job_id=ctx.job_id,
        created_by=owner,
    )
    if outcome is None:
        return JobResult(candidates=[], model_version="")
    summary = _train_summary(outcome)
    return JobResult(
        candidates=[CandidateResult(text=summary, finish_reason="stop", metadata={
            "vae_version": outcome.vae.label, "gan_version": outcome.gan.label, "corpus": corpus, **outcome.metrics})],
        model_version=outcome.vae.label,
        usage={"train_sentences": outcome.metrics["vae"]["train_sentences"]},
    )


def _user(user_id):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def _train_summary(outcome: GenModelTrainOutcome) -> str:
    v = outcome.metrics["vae"]
    g = outcome.metrics["gan"]
    val = v["validation"]
    return (
        f"Trained {outcome.vae.label} (VAE) and {outcome.gan.label} (GAN) on {v['train_sentences']} sentences "
        f"({v['validation_sentences']} held out): validation ELBO {val['elbo']:.2f} nats/sentence "
        f"(reconstruction {val['recon_nll']:.2f}, KL {val['kl']:.2f}), {val['active_units']}/{val['latent_dim']} "
        f"active units, reconstruction BLEU {val['recon_bleu']:.3f}; {v['steps']} VAE steps "
        f"({v['stop_reason']}, {v['sentences_per_second']} sentences/s), {g['steps']} GAN steps "
        f"(validation Wasserstein estimate {g['validation_wasserstein']:.3f})."
    )
