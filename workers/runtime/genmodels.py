"""The sentence VAE and latent GAN at work: training jobs, and the ``variants``, ``interpolate``,
``sample`` and ``augment`` job kinds (docs/genmodels.md).

Models are ``ModelVersion`` rows: a ``vae`` version (``name@N``) and the ``gan`` version trained
with it (``name-gan@M``, its config names the VAE). A request names the VAE (``"name"`` or
``"name@3"``); none: the promoted VAE of ``GENAI_GENMODEL_PURPOSE``, else the newest one. The pair
is loaded once per worker process (LRU of ``GENAI_GENMODEL_CACHE_SIZE``), in float32 on the
worker's device.

Scores: ``realism`` is the GAN critic's score of a text's posterior mean, standardised by the
critic's scores of the validation sentences (0 = as real as a typical sentence of the corpus;
negative = less), and ``realism_p`` its logistic squashing into (0, 1). ``novelty`` of a variant
is 1 - BLEU against the source text.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.kinds import CandidateResult, JobResult
from generation.privacy import pii_mask
from workers.ml.gan import LatentGAN
from workers.ml.text_metrics import sentence_bleu, text_hash, text_key, words
from workers.ml.text_tokenizer import TextTokenizer
from workers.ml.vae import SentenceVAE
from workers.train.genmodels import (
    GAN_FILE,
    VAE_FILE,
    GANTrainConfig,
    VAETrainConfig,
    corpus_sentences,
    gan_checkpoint_load,
    gan_checkpoint_save,
    gan_train,
    vae_checkpoint_load,
    vae_checkpoint_save,
    vae_reconstruction_bleu,
    vae_train,
)

logger = logging.getLogger(__name__)

DECODINGS = ("greedy", "sample", "beam")


# --- loading --------------------------------------------------------------------------------


@dataclass
class GenModel:
    """A VAE and (when one was trained with it) its GAN, loaded on one device."""

    vae: SentenceVAE
    tokenizer: TextTokenizer
    vae_label: str
    train_text_hashes: set[str]
    gan: LatentGAN | None
    gan_label: str
    critic_real_mean: float
    critic_real_std: float
    device: torch.device

    @property
    def label(self) -> str:
        return f"{self.vae_label}+{self.gan_label}" if self.gan_label else self.vae_label


_cache: OrderedDict[tuple, GenModel] = OrderedDict()
_cache_lock = threading.Lock()


def genmodel_versions(*, name: str | None = None, gan: str | None = None):
    """(vae ModelVersion, gan ModelVersion or None) for a request's model name; (None, None): none."""
    from generation.kinds.variants import genmodel_versions_resolve

    return genmodel_versions_resolve(name or None, gan_name=gan or None)


def _device() -> torch.device:
    from workers.runtime.device import device_get

    return device_get().device


def genmodel_get(*, name: str | None = None, gan: str | None = None) -> GenModel:
    """The process's loaded VAE (+GAN) for a request; PermanentJobError when there is none.
    ``gan`` names a GAN version of that VAE (default: its promoted, else newest)."""
    vae_row, gan_row = genmodel_versions(name=name, gan=gan)
    if vae_row is None:
        if name:
            raise PermanentJobError(f"No ready VAE model version named {name!r}.", code="unknown_model")
        raise PermanentJobError(
            "No VAE model version exists yet: run a genmodel_train job (or manage.py genmodel_train) first.",
            code="no_model",
        )
    if gan and gan_row is None:
        raise PermanentJobError(f"No ready GAN model version {gan!r} trained on {vae_row.label}.", code="unknown_model")
    key = (vae_row.pk, gan_row.pk if gan_row else None)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        store = Path(settings.GENAI_MODEL_STORE_DIR)
        device = _device()
        started = time.monotonic()
        try:
            vae_ckpt = vae_checkpoint_load(store / vae_row.artifact_path / VAE_FILE, device=device)
            gan_ckpt = gan_checkpoint_load(store / gan_row.artifact_path / GAN_FILE, device=device) if gan_row else None
        except FileNotFoundError as exc:
            raise PermanentJobError(f"The files of {vae_row.label} are missing on this worker: {exc}", code="model_missing") from exc
        model = GenModel(
            vae=vae_ckpt.model,
            tokenizer=vae_ckpt.tokenizer,
            vae_label=vae_row.label,
            train_text_hashes=vae_ckpt.train_text_hashes,
            gan=gan_ckpt.gan if gan_ckpt else None,
            gan_label=gan_row.label if gan_row else "",
            critic_real_mean=gan_ckpt.critic_real_mean if gan_ckpt else 0.0,
            critic_real_std=gan_ckpt.critic_real_std if gan_ckpt else 1.0,
            device=device,
        )
        _cache[key] = model
        while len(_cache) > max(1, settings.GENAI_GENMODEL_CACHE_SIZE):
            _cache.popitem(last=False)
        logger.info("loaded %s on %s in %.2f s", model.label, device, time.monotonic() - started)
        return model


# --- model operations -----------------------------------------------------------------------


def _generator(seed: int | None) -> torch.Generator:
    return torch.Generator().manual_seed(seed if seed is not None else random.SystemRandom().randrange(2**31))


@torch.inference_mode()
def texts_encode(model: GenModel, texts: Sequence[str], *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior (mu, logvar) of each text, in order."""
    mus, logvars = [], []
    for start in range(0, len(texts), batch_size):
        ids = model.tokenizer.encode_batch([t or " " for t in texts[start : start + batch_size]])
        batch, lengths = model.vae.batch_make(ids, model.device)
        mu, logvar = model.vae.encode(batch, lengths)
        mus.append(mu.float())
        logvars.append(logvar.float())
    return torch.cat(mus), torch.cat(logvars)


@torch.inference_mode()
def latents_decode(
    model: GenModel,
    z: torch.Tensor,
    *,
    decoding: str = "greedy",
    temperature: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> list[str]:
    out: list[str] = []
    for start in range(0, z.size(0), batch_size):
        ids = model.vae.generate(
            z[start : start + batch_size].to(model.device),
            strategy=decoding,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
        )
        out += model.tokenizer.decode_batch(ids)
    return out


@torch.inference_mode()
def realism_scores(model: GenModel, texts: Sequence[str]) -> list[float | None]:
    """The critic's standardised score of each text's posterior mean (None without a GAN)."""
    if model.gan is None or not texts:
        return [None] * len(texts)
    mu, _ = texts_encode(model, texts)
    scores = model.gan.critic_score(mu)
    return [float(s) for s in (scores - model.critic_real_mean) / model.critic_real_std]


def _squash(value: float | None) -> float:
    return 0.5 if value is None else 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, value))))


def _keeps_words(text: str, words: Sequence[str]) -> bool:
    return all(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) for word in words)


# --- variants, interpolation, samples -------------------------------------------------------


def variants_make(
    *,
    text: str,
    k: int,
    must_keep: Sequence[str] = (),
    spread: float = 1.0,
    decoding: str = "greedy",
    temperature: float = 0.8,
    seed: int | None = None,
    model: GenModel,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """k rewrites of ``text`` decoded from latents around its posterior, ranked by realism and
    novelty; candidates missing a ``must_keep`` word, empty ones, copies of the text and
    duplicates are removed. Returns (variants, counts of what was removed)."""
    generator = _generator(seed)
    mu, logvar = texts_encode(model, [text])
    std = torch.exp(0.5 * logvar)
    source_key = text_key(text)
    seen = {source_key}
    kept: list[str] = []
    removed = {"empty_or_duplicate": 0, "missing_must_keep": 0, "decoded": 0}
    # Widen the search while too few survive (must-keep words make most latents fail).
    for round_index in range(4):
        n = max(4 * k, 16) * (2**round_index)
        eps = torch.randn(n, mu.size(1), generator=generator).to(mu.device)
        scale = spread * (1.0 + 0.5 * round_index)
        z = mu + scale * std * eps
        decoded = latents_decode(model, z, decoding=decoding, temperature=temperature, generator=generator)
        removed["decoded"] += len(decoded)
        for candidate in decoded:
            key = text_key(candidate)
            if not key or key in seen:
                removed["empty_or_duplicate"] += 1
                continue
            seen.add(key)
            if must_keep and not _keeps_words(candidate, must_keep):
                removed["missing_must_keep"] += 1
                continue
            kept.append(candidate)
        if len(kept) >= 2 * k:
            break
    realism = realism_scores(model, kept)
    ranked = []
    for candidate, real in zip(kept, realism, strict=True):
        novelty = 1.0 - sentence_bleu(candidate, [text])
        ranked.append(
            {
                "text": candidate,
                "score": 0.5 * _squash(real) + 0.5 * novelty,
                "realism": real,
                "novelty": novelty,
            }
        )
    ranked.sort(key=lambda item: -item["score"])
    return ranked[:k], removed


def interpolation_make(
    *, text_a: str, text_b: str, steps: int, path: str = "linear", model: GenModel
) -> list[dict[str, Any]]:
    """``steps`` sentences decoded (greedy) from evenly spaced points between the two texts'
    posterior means, both ends included; ``slerp`` follows the great circle (a path that keeps
    the latent norm, where the prior's mass is)."""
    mu, _ = texts_encode(model, [text_a, text_b])
    a, b = mu[0], mu[1]
    points = []
    for i in range(steps):
        t = i / (steps - 1) if steps > 1 else 0.0
        if path == "slerp":
            omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0))
            if float(omega) < 1e-4:
                points.append((1 - t) * a + t * b)
            else:
                so = torch.sin(omega)
                points.append(torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b)
        else:
            points.append((1 - t) * a + t * b)
    z = torch.stack(points)
    texts = latents_decode(model, z, decoding="greedy")
    realism = realism_scores(model, texts)
    return [
        {"text": text, "t": round(i / (steps - 1) if steps > 1 else 0.0, 4), "realism": real}
        for i, (text, real) in enumerate(zip(texts, realism, strict=True))
    ]


def samples_make(
    *, n: int, source: str, decoding: str = "greedy", temperature: float = 1.0, seed: int | None = None, model: GenModel
) -> list[dict[str, Any]]:
    """n texts from the GAN's generator (``source="gan"``) or the VAE's N(0, I) prior."""
    generator = _generator(seed)
    with torch.inference_mode():
        if source == "gan":
            if model.gan is None:
                raise PermanentJobError(f"{model.vae_label} has no GAN; sample from the prior.", code="no_gan")
            z = model.gan.sample(n, generator=generator)
        else:
            z = torch.randn(n, model.vae.config.latent_dim, generator=generator).to(model.device)
    texts = latents_decode(model, z, decoding=decoding, temperature=temperature, generator=generator)
    realism = realism_scores(model, texts)
    return [{"text": text, "realism": real} for text, real in zip(texts, realism, strict=True)]


# --- augmentation ---------------------------------------------------------------------------


def looping(text: str) -> bool:
    """A decoding that loops: a word right after itself ("the the") or a word 3-gram twice."""
    tokens = [token for token in words(text) if token[0].isalnum()]
    if any(a == b for a, b in zip(tokens, tokens[1:])):
        return True
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return len(grams) != len(set(grams))


def augment_examples(*, texts: list[str], labels: list[str], per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """``per_class`` synthetic (text, label) examples for each label, decoded from that class's
    latent region, with the promoted (else newest) VAE, ranked by the GAN critic's realism.

    The region: random points between two posterior means of the class (or around one when the
    class has a single text) plus posterior noise. A candidate is kept when it is not empty, not
    a copy of any input text or of another candidate, does not loop (``looping``: a weak decoder's
    "the the the" would be training data), and (with two or more classes) its own
    posterior mean lies nearer its class's centroid than any other class's (label consistency);
    the best ``per_class`` by realism are returned (fewer when too few pass after 4 rounds)."""
    if len(texts) != len(labels):
        raise ValueError("texts and labels must have the same length")
    if per_class <= 0 or not texts:
        return []
    model = genmodel_get(name=None)
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    mu, logvar = texts_encode(model, texts)
    std = torch.exp(0.5 * logvar)
    classes = sorted(set(labels))
    members = {label: [i for i, lab in enumerate(labels) if lab == label] for label in classes}
    centroids = torch.stack([mu[members[label]].mean(dim=0) for label in classes])
    seen = {text_key(t) for t in texts}
    out: list[tuple[str, str]] = []
    for label in classes:
        index = members[label]
        kept: list[str] = []
        for round_index in range(4):
            n = 3 * (per_class - len(kept)) + 8
            first = [rng.choice(index) for _ in range(n)]
            second = [rng.choice(index) for _ in range(n)]
            t = torch.rand(n, 1, generator=generator).to(mu.device)
            eps = torch.randn(n, mu.size(1), generator=generator).to(mu.device)
            z = (1 - t) * mu[first] + t * mu[second] + (0.5 + 0.25 * round_index) * std[first] * eps
            candidates = []
            for candidate in latents_decode(model, z, decoding="greedy"):
                key = text_key(candidate)
                if key and key not in seen and not looping(candidate):
                    seen.add(key)
                    candidates.append(candidate)
            if candidates and len(classes) > 1:
                cand_mu, _ = texts_encode(model, candidates)
                nearest = torch.cdist(cand_mu, centroids).argmin(dim=1).tolist()
                candidates = [c for c, j in zip(candidates, nearest, strict=True) if classes[j] == label]
            kept += candidates
            if len(kept) >= per_class:
                break
        realism = realism_scores(model, kept)
        order = sorted(range(len(kept)), key=lambda i: -(realism[i] if realism[i] is not None else 0.0))
        out += [(kept[i], label) for i in order[:per_class]]
    return out


# --- input corpora --------------------------------------------------------------------------


def csv_rows(*, path: str = "", content: str = "", max_rows: int) -> tuple[list[dict[str, str]], list[str]]:
    """Rows (dicts) and header of a CSV file or inline CSV text; at most ``max_rows`` rows."""
    csv.field_size_limit(10 * 1024 * 1024)
    try:
        handle = open(path, newline="", encoding="utf-8") if path else io.StringIO(content)  # noqa: SIM115
    except OSError as exc:
        raise PermanentJobError(f"Cannot read the CSV {path!r}: {exc}", code="invalid_input") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            if len(rows) >= max_rows:
                break
            rows.append(row)
    return rows, header


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


# --- job runners ----------------------------------------------------------------------------


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


def genmodel_train_run(*, params: dict, ctx) -> JobResult:
    from generation.models import Job

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
    owner_id = Job.objects.filter(pk=ctx.job_id).values_list("owner_id", flat=True).first()
    if params.get("gan_only_for"):
        gan_config.max_seconds = budget
        outcome = gan_retrain(
            vae_name=params["gan_only_for"], texts=texts, gan_config=gan_config, log=ctx.metrics_log, progress=ctx.progress,
            should_stop=lambda: ctx.stop_reason() is not None, training_job_id=ctx.job_id, created_by=_user(owner_id),
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
        created_by=_user(owner_id),
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


def _candidates(items: list[dict], *, score_key: str) -> list[CandidateResult]:
    out = []
    for item in items:
        metadata = {k: v for k, v in item.items() if k != "text"}
        score = item.get(score_key)
        out.append(CandidateResult(text=item["text"], finish_reason="stop", score=score, metadata=metadata))
    return out


def variants_run(*, params: dict, ctx) -> JobResult:
    model = genmodel_get(name=params.get("model") or None)
    ctx.progress(0.1, f"variants from {model.label}")
    items, removed = variants_make(
        text=params["text"],
        k=params["k"],
        must_keep=params.get("must_keep") or [],
        spread=params.get("spread", 1.0),
        decoding=params.get("decoding", "greedy"),
        temperature=params.get("temperature", 0.8),
        seed=params.get("seed"),
        model=model,
    )
    if not items:
        raise PermanentJobError(
            f"No variant kept all the must-keep words ({', '.join(params.get('must_keep') or [])}) among "
            f"{removed['decoded']} decoded; the model may not know them: try fewer words or a larger spread.",
            code="no_variants",
        )
    return JobResult(candidates=_candidates(items, score_key="score"), model_version=model.label,
                     usage={"decoded": removed["decoded"], "removed": removed})


def interpolate_run(*, params: dict, ctx) -> JobResult:
    model = genmodel_get(name=params.get("model") or None)
    items = interpolation_make(
        text_a=params["text_a"], text_b=params["text_b"], steps=params["steps"], path=params.get("path", "linear"), model=model
    )
    return JobResult(candidates=_candidates(items, score_key="realism"), model_version=model.label)


def sample_run(*, params: dict, ctx) -> JobResult:
    model = genmodel_get(name=params.get("model") or None)
    items = samples_make(
        n=params["n"],
        source=params.get("source", "gan"),
        decoding=params.get("decoding", "greedy"),
        temperature=params.get("temperature", 1.0),
        seed=params.get("seed"),
        model=model,
    )
    return JobResult(candidates=_candidates(items, score_key="realism"), model_version=model.label)


def augment_rows(params: dict) -> tuple[list[str], list[str]]:
    """(texts, labels) of an augment job: inline rows or a CSV (path or uploaded content)."""
    if params.get("rows"):
        return [r["text"] for r in params["rows"]], [str(r["label"]) for r in params["rows"]]
    text_col, label_col = params.get("text_col", "text"), params.get("label_col", "label")
    rows, header = csv_rows(path=params.get("csv", ""), content=params.get("csv_content", ""),
                            max_rows=settings.GENAI_GENMODEL_AUGMENT_MAX_ROWS)
    _columns_check(header, [text_col, label_col], source=Path(params["csv"]).name if params.get("csv") else "upload")
    pairs = [(r[text_col] or "", (r[label_col] or "").strip()) for r in rows]
    pairs = [(t, lab) for t, lab in pairs if t.strip() and lab]
    if not pairs:
        raise PermanentJobError("The CSV has no row with both a text and a label.", code="invalid_input")
    return [t for t, _ in pairs], [lab for _, lab in pairs]


def augment_run(*, params: dict, ctx) -> JobResult:
    texts, labels = augment_rows(params)
    if len(set(labels)) > settings.GENAI_GENMODEL_AUGMENT_MAX_CLASSES:
        raise PermanentJobError(
            f"{len(set(labels))} classes; at most {settings.GENAI_GENMODEL_AUGMENT_MAX_CLASSES} "
            "(GENAI_GENMODEL_AUGMENT_MAX_CLASSES).", code="invalid_input")
    texts = [pii_mask(t).text for t in texts]
    model = genmodel_get(name=None)
    ctx.progress(0.1, f"augmenting {len(set(labels))} classes with {model.label}")
    examples = augment_examples(texts=texts, labels=labels, per_class=params["per_class"], seed=params.get("seed", 0))
    counts: dict[str, int] = {}
    for _, label in examples:
        counts[label] = counts.get(label, 0) + 1
    return JobResult(
        candidates=[CandidateResult(text=t, finish_reason="stop", metadata={"label": lab}) for t, lab in examples],
        model_version=model.label,
        usage={"per_class": counts, "input_rows": len(texts)},
    )


# --- evaluation -----------------------------------------------------------------------------


@torch.inference_mode()
def lm_perplexity(texts: Sequence[str], *, lm_name: str | None = None, batch_size: int = 16) -> float:
    """Fluency: the perplexity of the texts under the causal LM (SmolLM2 by default), over all
    their tokens, each text scored from the tokenizer's start-of-text token."""
    from workers.runtime.models import lm_get

    lm = lm_get(lm_name)
    tokenizer, model = lm.tokenizer, lm.model
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [[start_id] + tokenizer(t, add_special_tokens=False)["input_ids"][:128] for t in texts if t.strip()]
    if not encoded:
        return float("inf")
    encoded.sort(key=len)
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), start_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, row in enumerate(chunk):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
        target_mask = mask[:, 1:].float()
        total_nll += float((nll * target_mask).sum())
        total_tokens += int(target_mask.sum())
    return math.exp(total_nll / max(1, total_tokens))


def text_set_figures(texts: Sequence[str], *, train_hashes: set[str], lm_name: str | None) -> dict[str, Any]:
    """Quality and diversity of a set of texts: distinct-1/2, self-BLEU, novelty (share not a
    training sentence), fluency (LM perplexity), mean words, share empty."""
    from workers.ml.text_metrics import distinct_n, novelty, self_bleu

    non_empty = [t for t in texts if t.strip()]
    return {
        "n": len(texts),
        "empty_share": round(1 - len(non_empty) / max(1, len(texts)), 4),
        "mean_words": round(sum(len(words(t)) for t in non_empty) / max(1, len(non_empty)), 2),
        "distinct_1": round(distinct_n(non_empty, 1), 4),
        "distinct_2": round(distinct_n(non_empty, 2), 4),
        "self_bleu": round(self_bleu(non_empty), 4),
        "novelty": round(novelty(non_empty, train_hashes), 4),
        "fluency_ppl": round(lm_perplexity(non_empty, lm_name=lm_name), 2),
    }


def fluency_matched_diversity(curves: dict[str, list[dict[str, Any]]], *, prior_key: str = "vae_prior") -> list[dict[str, Any]]:
    """The comparison "Language GANs Falling Short" (Caccia et al. 2020) asks for: each GAN point
    of a temperature sweep against the prior's self-BLEU at the same fluency, read off the prior's
    curve (``curves[prior_key]``, linear in log perplexity between its two nearest points). A GAN
    point outside the prior's fluency range has no counterpart (``prior_self_bleu`` None)."""
    prior = sorted(
        ((math.log(p["fluency_ppl"]), p["self_bleu"]) for p in curves.get(prior_key, []) if math.isfinite(p["fluency_ppl"])),
    )
    rows = []
    for point in curves.get("gan", []):
        ppl = point["fluency_ppl"]
        matched = None
        if prior and math.isfinite(ppl) and prior[0][0] <= math.log(ppl) <= prior[-1][0]:
            x = math.log(ppl)
            for (x0, y0), (x1, y1) in zip(prior, prior[1:] or prior, strict=True):
                if x0 <= x <= x1:
                    matched = y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
                    break
        rows.append({
            "temperature": point["temperature"], "gan_fluency_ppl": ppl, "gan_self_bleu": point["self_bleu"],
            "prior_self_bleu": None if matched is None else round(matched, 4),
            "gan_more_diverse": None if matched is None else point["self_bleu"] < matched,
        })
    return rows


def length_matched(pool: Sequence[str], lengths: Sequence[int]) -> list[str]:
    """Texts of ``pool`` with the given word counts, one per entry of ``lengths`` (the nearest count
    left where none of that count is; each pool text used once; fewer when the pool runs out)."""
    by_length: dict[int, list[str]] = {}
    for text in pool:
        by_length.setdefault(len(words(text)), []).append(text)
    out = []
    for length in lengths:
        left = [count for count, texts in by_length.items() if texts]
        if not left:
            break
        nearest = min(left, key=lambda count: (abs(count - length), count))
        out.append(by_length[nearest].pop())
    return out


def genmodel_sweep(
    *, model: GenModel, temperatures: Sequence[float], samples: int, seed: int, lm_name: str | None,
    length_matched_pool: int = 0,
) -> dict[str, Any]:
    """Quality/diversity curves of the prior and the GAN over sampled decoding at each temperature
    (the same seeds for both), and the GAN's points against the prior's at equal fluency.

    ``length_matched_pool`` (k > 0) adds a third curve: at each temperature, k x ``samples`` prior
    texts from which as many as the GAN made are picked with the GAN's sentence lengths
    (``length_matched``), and the GAN against that curve at equal fluency: self-BLEU and per-token
    perplexity both fall with sentence length, so a generator of longer sentences looks more
    diverse and more fluent for its length alone."""
    with_gan = model.gan is not None
    curves: dict[str, list[dict[str, Any]]] = {"vae_prior": [], **({"gan": []} if with_gan else {})}
    if with_gan and length_matched_pool:
        curves["vae_prior_length_matched"] = []
    keys = ("self_bleu", "fluency_ppl", "distinct_2", "novelty", "mean_words")

    def point(texts: list[str], temperature: float) -> dict[str, Any]:
        figures = text_set_figures(texts, train_hashes=model.train_text_hashes, lm_name=lm_name)
        return {"temperature": temperature, **{k: figures[k] for k in keys}}

    def texts_of(source: str, n: int, temperature: float, sample_seed: int) -> list[str]:
        return [item["text"] for item in samples_make(
            n=n, source=source, decoding="sample", temperature=temperature, seed=sample_seed, model=model)]

    for temperature in sorted(temperatures):
        curves["vae_prior"].append(point(texts_of("prior", samples, temperature, seed), temperature))
        if not with_gan:
            continue
        gan_texts = texts_of("gan", samples, temperature, seed)
        curves["gan"].append(point(gan_texts, temperature))
        if "vae_prior_length_matched" in curves:
            pool = texts_of("prior", length_matched_pool * samples, temperature, seed + 1)
            lengths = [len(words(t)) for t in gan_texts if t.strip()]
            curves["vae_prior_length_matched"].append(point(length_matched(pool, lengths), temperature))
    report: dict[str, Any] = {"curves": curves}
    for suffix, prior_key in (("", "vae_prior"), ("_and_length", "vae_prior_length_matched")):
        if prior_key not in curves or not with_gan:
            continue
        matched = fluency_matched_diversity(curves, prior_key=prior_key)
        comparable = [row for row in matched if row["gan_more_diverse"] is not None]
        report[f"at_equal_fluency{suffix}"] = matched
        report[f"gan_more_diverse_at_equal_fluency{suffix}"] = bool(comparable) and all(row["gan_more_diverse"] for row in comparable)
    return report


def genmodel_evaluate(
    *, model: GenModel, texts: Sequence[str], samples: int = 500, seed: int = 0, lm_name: str | None = None,
    decoding: str = "greedy", max_words: int = 30, temperature: float = 1.0, sweep: Sequence[float] = (),
    length_matched_pool: int = 0,
) -> dict[str, Any]:
    """The figures of ``manage.py genmodel_evaluate`` (docs/genmodels.md) on held-out ``texts``;
    ``temperature`` applies to ``decoding="sample"``; ``sweep`` (temperatures) adds the
    quality/diversity curves and the comparison at equal fluency (``genmodel_sweep``)."""
    from workers.train.genmodels import vae_evaluate

    sentences = corpus_sentences([pii_mask(t).text for t in texts], max_words=max_words)
    if len(sentences) < 2:
        raise ValueError(f"Need at least 2 sentences of 3 to {max_words} words to evaluate on, got {len(sentences)}.")
    rng = random.Random(seed)
    started = time.monotonic()
    ids = model.tokenizer.encode_batch(sentences)
    vae_figures = vae_evaluate(model.vae, ids, seed=seed)
    vae_figures["recon_bleu"] = vae_reconstruction_bleu(model.vae, model.tokenizer, sentences[: max(samples, 500)])
    vae_figures = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vae_figures.items()}
    sets = {
        "vae_prior": samples_make(n=samples, source="prior", decoding=decoding, temperature=temperature, seed=seed,
                                  model=model),
    }
    if model.gan is not None:
        sets["gan"] = samples_make(n=samples, source="gan", decoding=decoding, temperature=temperature, seed=seed,
                                   model=model)
    generated = {key: [item["text"] for item in items] for key, items in sets.items()}
    data = rng.sample(sentences, min(samples, len(sentences)))
    extra = {}
    if "gan" in generated and length_matched_pool:
        pool = samples_make(n=length_matched_pool * samples, source="prior", decoding=decoding, temperature=temperature,
                            seed=seed + 1, model=model)
        lengths = [len(words(t)) for t in generated["gan"] if t.strip()]
        extra["vae_prior_length_matched"] = length_matched([item["text"] for item in pool], lengths)
    figures = {
        key: text_set_figures(values, train_hashes=model.train_text_hashes, lm_name=lm_name)
        for key, values in {**generated, **extra, "data": data}.items()
    }
    for key, items in sets.items():
        scores = [item["realism"] for item in items if item["realism"] is not None]
        if scores:
            figures[key]["mean_realism"] = round(sum(scores) / len(scores), 4)
        figures[key]["examples"] = generated[key][:5]
    validation = vae_figures
    aims = {
        "kl_positive": validation["kl"] > 0,
        "most_units_active": validation["active_units"] > validation["latent_dim"] / 2,
    }
    if "gan" in figures:
        aims["gan_at_least_as_fluent_as_prior"] = figures["gan"]["fluency_ppl"] <= figures["vae_prior"]["fluency_ppl"]
        aims["gan_more_diverse_than_prior"] = figures["gan"]["self_bleu"] < figures["vae_prior"]["self_bleu"]
        aims["gan_novelty_at_least_0.9"] = figures["gan"]["novelty"] >= 0.9
    if "vae_prior_length_matched" in figures:
        matched = figures["vae_prior_length_matched"]
        aims["gan_at_least_as_fluent_as_length_matched_prior"] = figures["gan"]["fluency_ppl"] <= matched["fluency_ppl"]
        aims["gan_more_diverse_than_length_matched_prior"] = figures["gan"]["self_bleu"] < matched["self_bleu"]
    aims["prior_novelty_at_least_0.9"] = figures["vae_prior"]["novelty"] >= 0.9
    report_sweep = None
    if sweep:
        report_sweep = genmodel_sweep(model=model, temperatures=sweep, samples=samples, seed=seed, lm_name=lm_name,
                                      length_matched_pool=length_matched_pool)
        for key in ("gan_more_diverse_at_equal_fluency", "gan_more_diverse_at_equal_fluency_and_length"):
            if key in report_sweep:
                aims[key] = report_sweep[key]
    return {
        "model": model.label,
        "evaluated_sentences": len(sentences),
        "validation": validation,
        "samples": figures,
        "aims": aims,
        "decoding": decoding,
        "temperature": temperature if decoding == "sample" else None,
        "lm": lm_name or settings.GENAI_LM_MODEL,
        "sweep": report_sweep,
        "seconds": round(time.monotonic() - started, 1),
    }
