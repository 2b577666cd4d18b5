"""Training orchestration of the VAE and its latent GAN (the ``genmodel_train`` kind): read the
corpus (a domain's own: the copy corpus's training split for ``product``, the Bitext answers for
``support``; or a CSV column, inline texts), split it into training sentences, train the VAE then
the GAN, save the checkpoints and register both model versions; ``gan_retrain`` trains a new GAN
for an existing VAE.

Two VAE architectures: ``optimus`` (default; ``workers.train.optimus``: MiniLM encoder, SmolLM2
decoder with LoRA) and ``gru`` (``workers.train.genmodels``, the earlier small model trained from
scratch, kept for comparison). The GAN is the same latent WGAN-GP for both."""

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
from generation.text.product_names import ProductNames, delexicalise, has_slots
from generation.text.tables import CsvError, csv_read
from workers.ml.text_metrics import text_hash
from workers.runtime.genmodels import _device, genmodel_get, genmodel_versions, latents_decode, texts_encode
from workers.train.genmodels import (
    GAN_FILE,
    VAE_FILE,
    GANTrainConfig,
    VAETrainConfig,
    corpus_sentences,
    gan_checkpoint_save,
    gan_train,
    gan_train_on_latents,
    vae_checkpoint_save,
    vae_reconstruction_bleu,
    vae_train,
)
from workers.train.optimus import (
    OptimusTrainConfig,
    latents_texts,
    optimus_checkpoint_save,
    optimus_reconstruction_bleu,
    optimus_train,
    texts_posterior,
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


def domain_corpus(domain: str) -> tuple[list[str], str]:
    """A domain's own training texts: ``product``, the descriptions of the copy corpus's training
    split (``copy_corpus.split_of``, one product in 8 held back; never a catalogue), each product's
    name and brand written as ``{name}`` and ``{brand}`` (``generation.text.product_names``); ``support``,
    the answers of the shipped Bitext dialogues (GENAI_GENMODEL_DEFAULT_CSV's ``response``)."""
    if domain == "product":
        from django.core.management.base import CommandError

        from generation.management.commands.copy_corpus import CORPUS_DIR, TEST_EVERY, corpus_read, split_of

        try:
            rows = corpus_read(CORPUS_DIR)
        except CommandError as exc:
            raise PermanentJobError(f"Cannot read the copy corpus: {exc}", code="invalid_input") from None
        train = [r for r in rows if split_of(r["id"], test_every=TEST_EVERY) == "train"]
        # each product's name and brand as slots ("The {name} from {brand} is a wrap dress"):
        # written once or twice each, they would be learnt as "write a name", and invented
        texts = [delexicalise(r["description"], ProductNames(name=r["attributes"].get("name") or "",
                                                              brand=r["attributes"].get("brand") or ""))
                 for r in train]
        return texts, f"copy corpus, training split ({len(train)} of {len(rows)} products, names as slots)"
    if domain == "support":
        path = settings.GENAI_GENMODEL_DEFAULT_CSV
        rows, header = csv_rows(path=path, max_rows=settings.GENAI_GENMODEL_MAX_SENTENCES)
        _columns_check(header, ["response"], source=Path(path).name)
        return [row["response"] or "" for row in rows], f"{Path(path).name} (response, {len(rows)} rows)"
    raise PermanentJobError(f"Unknown domain {domain!r}: product or support.", code="invalid_input")




def corpus_load(params: dict) -> tuple[list[str], str]:
    """The training texts a genmodel_train job's params name, masked: (texts, description)."""
    if params.get("domain") and not any(params.get(k) for k in ("texts", "csv", "csv_content")):
        texts, source = domain_corpus(params["domain"])
    elif params.get("texts"):
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
    vae_config: VAETrainConfig | OptimusTrainConfig,
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
    """Train a VAE (pretrained parts with an ``OptimusTrainConfig``, the GRU VAE with a
    ``VAETrainConfig``) then a GAN on its latents of ``texts``, and register both versions. None
    when stopped."""
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )

    sentences = _training_sentences(texts, max_words=max_words, seed=vae_config.seed)
    # a corpus with product names as slots: the model's jobs put the source's names back
    slots = any(has_slots(sentence) for sentence in sentences)
    budget = max_seconds if max_seconds is not None else settings.GENAI_GENMODEL_TRAIN_MAX_SECONDS
    if budget and not vae_config.max_seconds:
        vae_config.max_seconds = 0.8 * budget
    device = _device()
    started = time.monotonic()
    vae_progress = lambda fraction, message: progress(0.8 * fraction, message)  # noqa: E731
    gan_log = lambda step, split, **values: log(step, "gan", **values)  # noqa: E731
    gan_progress = lambda fraction, message: progress(0.8 + 0.2 * fraction, message)  # noqa: E731
    if isinstance(vae_config, OptimusTrainConfig):
        from workers.runtime.device import cpu_has_native_bf16
        from workers.runtime.genmodels import decoder_dir, encoder_dir

        # bf16 forward passes on a GPU, and on a CPU that multiplies bf16 natively (x2 a float32
        # step of SmolLM2 on 2 cores); decoding for inference stays float32 on a CPU.
        if not vae_config.amp_dtype and (device.type == "cuda" or cpu_has_native_bf16()):
            vae_config.amp_dtype = "bfloat16"
        encoder, decoder = settings.GENAI_KB_EMBED_MODEL, settings.GENAI_LM_MODEL
        vae = optimus_train(sentences, config=vae_config, encoder_dir=encoder_dir(encoder), decoder_dir=decoder_dir(decoder),
                            validation_fraction=validation_fraction, device=device, log=log, progress=vae_progress,
                            should_stop=should_stop)
        if should_stop():
            return None
        amp = vae_config.amp_dtype if device.type == "cuda" else ""
        vae.metrics["validation"]["recon_bleu"] = optimus_reconstruction_bleu(vae.parts, vae.valid_texts[:64], amp_dtype=amp)
        mu, logvar = texts_posterior(vae.parts, vae.train_texts)
        valid_mu, _ = texts_posterior(vae.parts, vae.valid_texts)
        if budget and not gan_config.max_seconds:
            gan_config.max_seconds = max(10.0, budget - (time.monotonic() - started))
        gan = gan_train_on_latents(
            mu, logvar, valid_mu, config=gan_config, device=device, log=gan_log, progress=gan_progress,
            should_stop=should_stop, decode=lambda z: latents_texts(vae.parts, z, amp_dtype=amp),
        )

        def save(path: Path) -> None:
            optimus_checkpoint_save(path, vae, encoder=encoder, decoder=decoder, extra={"corpus": corpus, "slots": slots})
    else:
        vae = vae_train(sentences, config=vae_config, validation_fraction=validation_fraction, device=device, log=log,
                        progress=vae_progress, should_stop=should_stop)
        if should_stop():
            return None
        vae.metrics["validation"]["recon_bleu"] = vae_reconstruction_bleu(vae.model, vae.tokenizer, vae.valid_texts[:500])
        if budget and not gan_config.max_seconds:
            gan_config.max_seconds = max(10.0, budget - (time.monotonic() - started))
        gan = gan_train(vae.model, vae.tokenizer, vae.train_texts, vae.valid_texts, config=gan_config, device=device,
                        log=gan_log, progress=gan_progress, should_stop=should_stop)

        def save(path: Path) -> None:
            vae_checkpoint_save(path, vae, extra={"corpus": corpus})
    if should_stop():
        return None

    vae_number = model_version_next_number(name=name)
    vae_dir = model_version_artifact_dir(family="vae", name=name, version=vae_number)
    vae_label = f"{name}@{vae_number}"
    save(vae_dir / VAE_FILE)
    train_config = asdict(vae_config)
    vae_row = model_version_register(
        family="vae",
        name=name,
        version=vae_number,
        purpose=purpose,
        artifact_path=vae_dir,
        config={**train_config, "architecture": vae.metrics.get("architecture", "gru"), "corpus": corpus, "slots": slots,
                "max_words": max_words, "validation_fraction": validation_fraction},
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
        sentences, validation_fraction=vae_row.config.get("validation_fraction", 0.1), seed=seed,
        validation_max=vae_row.config.get("validation_max", 1000),
    )
    known = sum(text_hash(t) in model.train_text_hashes for t in train_texts)
    if known < 0.99 * len(train_texts) or len(train_texts) < 0.99 * len(model.train_text_hashes):
        raise PermanentJobError(
            f"This corpus is not the one {vae_row.label} was trained on ({known} of its {len(train_texts)} training "
            f"sentences are the VAE's, which had {len(model.train_text_hashes)}); pass the VAE's own corpus.",
            code="invalid_input",
        )
    mu, logvar = (t.clone() for t in texts_encode(model, train_texts))  # inference tensors -> plain ones
    valid_mu = texts_encode(model, valid_texts)[0].clone()
    gan = gan_train_on_latents(
        mu, logvar, valid_mu, config=gan_config, device=model.device, decode=lambda z: latents_decode(model, z),
        log=lambda step, split, **values: log(step, "gan", **values), progress=progress, should_stop=should_stop,
    )
    if should_stop():
        return None
    gan_row = _gan_register(gan, vae_label=vae_row.label, purpose=vae_row.purpose, training_job_id=training_job_id,
                            created_by=created_by)
    return GenModelTrainOutcome(vae=vae_row, gan=gan_row, metrics={"vae": vae_row.metrics, "gan": gan.metrics})


# The GRU VAE's job defaults (they differ from VAETrainConfig's, which its tests and bench use).
GRU_JOB_DEFAULTS = {"embed_dim": 128, "vocab_size": 4000, "batch_size": 64, "kl_schedule": "linear",
                    "kl_warmup_steps": 1500, "max_epochs": 10}
GRU_KEYS = ("latent_dim", "hidden_dim", "embed_dim", "vocab_size", "batch_size", "lr", "word_dropout", "kl_schedule",
            "kl_warmup_steps", "free_bits", "patience", "eval_every", "max_steps")
OPTIMUS_KEYS = ("latent_dim", "prefix_len", "memory", "encoder_train_layers", "lora_rank", "batch_size", "lr", "word_dropout", "kl_schedule",
                "kl_warmup_steps", "kl_cycles", "free_bits", "patience", "eval_every", "max_steps")


def train_configs(params: dict, *, gpu: bool) -> tuple[VAETrainConfig | OptimusTrainConfig, GANTrainConfig]:
    """The VAE and GAN configs of a genmodel_train job's (or the command's) params: what is given
    over the architecture's defaults, CPU-sized (``OptimusTrainConfig()``) or, on a GPU,
    ``OptimusTrainConfig.gpu_sized()``."""
    seed = params.get("seed", 0)
    if params.get("architecture", "optimus") == "gru":
        values = {**GRU_JOB_DEFAULTS, **{k: params[k] for k in GRU_KEYS if params.get(k) is not None}}
        if params.get("epochs"):
            values["max_epochs"] = params["epochs"]
        vae_config: VAETrainConfig | OptimusTrainConfig = VAETrainConfig(**values, seed=seed)
        log_every = GANTrainConfig.log_every
    else:
        values = {k: params[k] for k in OPTIMUS_KEYS if params.get(k) is not None}
        if params.get("epochs"):
            values["max_epochs"] = params["epochs"]
        vae_config = OptimusTrainConfig.gpu_sized(**values, seed=seed) if gpu else OptimusTrainConfig(**values, seed=seed)
        log_every = 500  # each log decodes the fixed noise batch with the LM
    gan_config = GANTrainConfig(
        steps=params.get("gan_steps") or GANTrainConfig.steps,
        n_critic=params.get("n_critic") or GANTrainConfig.n_critic,
        diversity_weight=params.get("gan_diversity_weight", settings.GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT),
        log_every=log_every,
        seed=seed,
    )
    return vae_config, gan_config


def genmodel_train_run(*, params: dict, ctx: RunnerContext) -> JobResult:

    texts, corpus = corpus_load(params)
    vae_config, gan_config = train_configs(params, gpu=_device().type == "cuda")
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
        purpose=job_purpose(params),
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


def job_purpose(params: dict) -> str:
    """The purpose of the versions a job registers: its ``purpose``, else its domain's, else
    GENAI_GENMODEL_PURPOSE."""
    if params.get("purpose"):
        return params["purpose"]
    if params.get("domain"):
        from generation.kinds.variants import domain_purpose

        return domain_purpose(params["domain"])
    return settings.GENAI_GENMODEL_PURPOSE


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
