"""Training loops of the sentence VAE and the latent WGAN-GP, their evaluation, and checkpoints.

No Django: the caller (``workers.runtime.genmodels`` for jobs, bench and tests directly) passes
callbacks for loss curves (``log(step, split, **values)``), progress and stopping.

VAE: byte-level BPE trained on the training split; length-bucketed batches; Adam; gradient
clipping; KL weight from ``kl_weight`` (linear or cyclical); validation every ``eval_every``
steps on the held-out split; early stopping on the validation ELBO (single-sample estimate,
fixed noise) with ``patience`` evaluations, counted only once the KL weight has reached its
ceiling (before that the ELBO is not yet what training optimises); the best state is kept.

GAN: the VAE is frozen; real latents are posterior samples z ~ q(z|x) of training sentences
(fresh noise each batch); ``n_critic`` critic steps per generator step; Adam(0.5, 0.9) as in
WGAN-GP; a fixed noise batch is decoded at every log step so the curves show what it generates.

Checkpoints (``*_checkpoint_save`` / ``*_checkpoint_load``) hold the model config (``model_args``),
the weights, the optimizer state, the training config, the tokenizer (VAE) and the metrics, and
load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from generation.text.sentences import sentences_split
from workers.ml.gan import GANConfig, LatentGAN, critic_loss, generator_loss, mode_seeking_ratio
from workers.ml.text_metrics import corpus_bleu, text_hash
from workers.ml.text_tokenizer import TextTokenizer
from workers.ml.vae import SentenceVAE, VAEConfig, elbo_figures, kl_weight, vae_loss

LogFn = Callable[..., None]  # log(step, split, **values)
ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]

VAE_FILE = "vae.pt"
GAN_FILE = "gan.pt"


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


# --- corpus ---------------------------------------------------------------------------------

_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")


def corpus_sentences(texts: Sequence[str], *, min_words: int = 3, max_words: int = 30) -> list[str]:
    """Texts -> their sentences (and list items, numbering removed), deduplicated in order.
    A sentence VAE models sentences: a long reply is split; pieces outside [min_words, max_words]
    words are left out."""
    seen: set[str] = set()
    out = []
    for text in texts:
        for piece in sentences_split(text or "", capitalised=True):
            piece = _LIST_MARK.sub("", piece).strip()
            count = len(piece.split())
            if not min_words <= count <= max_words:
                continue
            key = text_hash(piece)
            if key not in seen:
                seen.add(key)
                out.append(piece)
    return out


def corpus_split(
    texts: Sequence[str], *, validation_fraction: float, seed: int, validation_max: int = 1000
) -> tuple[list[str], list[str]]:
    """(train, validation); the validation split is at most ``validation_max`` sentences (it is
    evaluated every ``eval_every`` steps: a larger one costs training time, not accuracy)."""
    shuffled = list(texts)
    random.Random(seed).shuffle(shuffled)
    n_valid = max(1, int(round(len(shuffled) * validation_fraction))) if len(shuffled) > 1 else 0
    n_valid = min(n_valid, validation_max)
    return shuffled[n_valid:], shuffled[:n_valid]


# --- VAE ------------------------------------------------------------------------------------


@dataclass
class VAETrainConfig:
    vocab_size: int = 6000
    embed_dim: int = 256
    hidden_dim: int = 256
    latent_dim: int = 32
    max_len: int = 40
    word_dropout: float = 0.5  # 0.3 left the latent weak (KL 3.6, docs/benchmarks.md)
    dropout: float = 0.1
    batch_size: int = 64
    lr: float = 1e-3
    grad_clip: float = 5.0
    max_epochs: int = 10
    max_steps: int = 0  # 0: epochs decide
    max_seconds: float = 0.0  # 0: no time budget
    kl_schedule: str = "linear"  # linear | cyclical | constant
    kl_warmup_steps: int = 2000
    kl_cycles: int = 4
    beta: float = 1.0
    free_bits: float = 0.5  # nats per latent dimension (0.1: KL 3.6, generic decodes)
    eval_every: int = 200
    patience: int = 4  # evaluations without a better validation ELBO
    seed: int = 0

    def model_config(self, tokenizer: TextTokenizer) -> VAEConfig:
        return VAEConfig(
            vocab_size=tokenizer.vocab_size,
            embed_dim=self.embed_dim,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            max_len=self.max_len,
            word_dropout=self.word_dropout,
            dropout=self.dropout,
            pad_id=tokenizer.pad_id,
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
            unk_id=tokenizer.unk_id,
        )


@dataclass
class VAETrained:
    model: SentenceVAE
    tokenizer: TextTokenizer
    config: VAETrainConfig
    optimizer_state: dict
    metrics: dict[str, Any]
    train_texts: list[str]
    valid_texts: list[str]


def _batches(sequences: list[list[int]], *, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices in batches of similar length (less padding): shuffle, sort within pools of 50
    batches, shuffle the batches."""
    order = list(range(len(sequences)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(sequences[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def vae_evaluate(
    model: SentenceVAE, sequences: list[list[int]], *, batch_size: int = 128, seed: int = 0, with_mu: bool = False
) -> dict[str, Any]:
    """Validation figures, per sentence (nats): ELBO (single-sample, beta = 1, no free bits),
    reconstruction NLL, KL, per-token NLL and perplexity bound, active units."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    recon = kl = 0.0
    tokens = 0
    mus = []
    for start in range(0, len(sequences), batch_size):
        batch, lengths = model.batch_make(sequences[start : start + batch_size], device)
        mu, logvar = model.encode(batch, lengths)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=noise).to(device)
        logits = model.decode(z, model.decoder_inputs(batch))
        parts = vae_loss(logits, batch, mu, logvar, beta=1.0, pad_id=model.config.pad_id)
        n = batch.size(0)
        recon += float(parts.recon) * n
        kl += float(parts.kl) * n
        tokens += parts.tokens
        mus.append(mu.float().cpu())
    model.train(was_training)
    return elbo_figures(recon=recon, kl=kl, tokens=tokens, mus=mus, sentences=len(sequences),
                        latent_dim=model.config.latent_dim, with_mu=with_mu)


def vae_train(
    texts: Sequence[str],
    *,
    config: VAETrainConfig,
    validation_fraction: float = 0.1,
    validation_max: int = 1000,
    device: torch.device | str = "cpu",
    log: LogFn = _noop,
    progress: ProgressFn = _noop,
    should_stop: StopFn = lambda: False,
) -> VAETrained:
    """Train a sentence VAE on ``texts`` (already split into sentences)."""
    seed_everything(config.seed)
    train_texts, valid_texts = corpus_split(
        texts, validation_fraction=validation_fraction, seed=config.seed, validation_max=validation_max
    )
    if len(train_texts) < 2 or not valid_texts:
        raise ValueError(f"Need at least 3 sentences to train and validate on, got {len(texts)}")
    tokenizer = TextTokenizer.train(train_texts, vocab_size=config.vocab_size)
    train_ids = tokenizer.encode_batch(train_texts)
    valid_ids = tokenizer.encode_batch(valid_texts)
    model = SentenceVAE(config.model_config(tokenizer)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = random.Random(config.seed)

    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total_steps = steps_per_epoch * config.max_epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    started = time.monotonic()
    best: dict[str, Any] | None = None
    best_state: dict | None = None
    stale_evals = 0
    stop_reason = "max_steps"
    step = 0
    sentences_seen = 0
    window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}

    def evaluate() -> bool:
        """Validate; True when training should stop early."""
        nonlocal best, best_state, stale_evals
        figures = vae_evaluate(model, valid_ids, seed=config.seed)
        log(step, "validation", elbo=figures["elbo"], recon=figures["recon_nll"], kl=figures["kl"],
            active_units=figures["active_units"])
        annealed = kl_weight(step, schedule=config.kl_schedule, total_steps=total_steps,
                             warmup_steps=config.kl_warmup_steps, cycles=config.kl_cycles,
                             beta=config.beta) >= config.beta or config.kl_schedule == "cyclical"
        if best is None or figures["elbo"] > best["elbo"]:
            best = {**figures, "step": step}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            stale_evals = 0
        elif annealed:
            stale_evals += 1
        return stale_evals >= config.patience

    model.train()
    while step < total_steps:
        for indices in _batches(train_ids, batch_size=config.batch_size, rng=rng):
            if step >= total_steps:
                break
            batch, lengths = model.batch_make([train_ids[i] for i in indices], device)
            logits, mu, logvar, _ = model(batch, lengths)
            beta = kl_weight(step, schedule=config.kl_schedule, total_steps=total_steps,
                             warmup_steps=config.kl_warmup_steps, cycles=config.kl_cycles, beta=config.beta)
            parts = vae_loss(logits, batch, mu, logvar, beta=beta, free_bits=config.free_bits,
                             pad_id=model.config.pad_id)
            optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            sentences_seen += len(indices)
            window["loss"] += float(parts.total.detach())
            window["recon"] += float(parts.recon.detach())
            window["kl"] += float(parts.kl.detach())
            window["n"] += 1
            if step % config.eval_every == 0 or step == total_steps:
                n = window["n"]
                log(step, "train", loss=window["loss"] / n, recon=window["recon"] / n, kl=window["kl"] / n,
                    kl_weight=beta)
                window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}
                if evaluate():
                    stop_reason = "early_stopping"
                    total_steps = step
                    break
                progress(step / total_steps, f"VAE step {step}/{total_steps}: validation ELBO {best['elbo']:.2f}")
            if config.max_seconds and time.monotonic() - started > config.max_seconds:
                stop_reason = "time_budget"
                total_steps = step
                break
            if should_stop():
                stop_reason = "stopped"
                total_steps = step
                break
    if window["n"]:
        evaluate()
    seconds = time.monotonic() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    assert best is not None
    metrics = {
        "validation": best,
        "best_step": best["step"],
        "steps": step,
        "stop_reason": stop_reason,
        "train_sentences": len(train_texts),
        "validation_sentences": len(valid_texts),
        "train_seconds": round(seconds, 2),
        "sentences_per_second": round(sentences_seen / max(seconds, 1e-9), 1),
        "vocab_size": tokenizer.vocab_size,
        "device": str(device),
    }
    return VAETrained(
        model=model,
        tokenizer=tokenizer,
        config=config,
        optimizer_state=optimizer.state_dict(),
        metrics=metrics,
        train_texts=train_texts,
        valid_texts=valid_texts,
    )


@torch.no_grad()
def vae_reconstruction_bleu(model: SentenceVAE, tokenizer: TextTokenizer, texts: Sequence[str], *, batch_size: int = 128) -> float:
    """Corpus BLEU of greedy decodes of the posterior means against the inputs."""
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        batch, lengths = model.batch_make(tokenizer.encode_batch(chunk), device)
        mu, _ = model.encode(batch, lengths)
        outputs += tokenizer.decode_batch(model.generate(mu, strategy="greedy"))
    return corpus_bleu(outputs, list(texts))


def vae_checkpoint_save(path: Path, trained: VAETrained, *, extra: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model_args": asdict(trained.model.config),
        "state_dict": {k: v.detach().cpu() for k, v in trained.model.state_dict().items()},
        "optimizer": trained.optimizer_state,
        "train_config": asdict(trained.config),
        "tokenizer": trained.tokenizer.to_json(),
        "metrics": trained.metrics,
        # Novelty is measured against these (hashes, not the texts: no training data in the store).
        "train_text_hashes": sorted({text_hash(t) for t in trained.train_texts}),
        **(extra or {}),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


@dataclass
class VAECheckpoint:
    model: SentenceVAE
    tokenizer: TextTokenizer
    train_config: dict
    metrics: dict
    train_text_hashes: set[str]
    payload: dict = field(repr=False)


def vae_checkpoint_load(path: Path, *, device: torch.device | str = "cpu") -> VAECheckpoint:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = SentenceVAE(VAEConfig(**payload["model_args"]))
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    return VAECheckpoint(
        model=model,
        tokenizer=TextTokenizer.from_json(payload["tokenizer"]),
        train_config=payload["train_config"],
        metrics=payload["metrics"],
        train_text_hashes=set(payload["train_text_hashes"]),
        payload=payload,
    )


# --- GAN ------------------------------------------------------------------------------------


@dataclass
class GANTrainConfig:
    noise_dim: int = 64
    hidden_dim: int = 256
    layers: int = 3
    gp_weight: float = 10.0
    batch_size: int = 128
    steps: int = 1500  # generator steps
    n_critic: int = 5
    lr: float = 1e-4
    diversity_weight: float = 0.0  # weight of MSGAN's mode-seeking term in the generator's loss (0: plain WGAN-GP)
    max_seconds: float = 0.0
    log_every: int = 100
    fixed_noise: int = 8  # latents decoded at every log step to track what the generator makes
    seed: int = 0


@dataclass
class GANTrained:
    gan: LatentGAN
    config: GANTrainConfig
    optimizer_states: dict
    metrics: dict[str, Any]
    critic_real_mean: float
    critic_real_std: float


@torch.no_grad()
def vae_posteriors(model: SentenceVAE, sequences: list[list[int]], *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of every sequence, in order."""
    device = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, len(sequences), batch_size):
        batch, lengths = model.batch_make(sequences[start : start + batch_size], device)
        mu, logvar = model.encode(batch, lengths)
        mus.append(mu.float())
        logvars.append(logvar.float())
    return torch.cat(mus), torch.cat(logvars)


def gan_train(
    vae: SentenceVAE,
    tokenizer: TextTokenizer,
    train_texts: Sequence[str],
    valid_texts: Sequence[str],
    *,
    config: GANTrainConfig,
    device: torch.device | str = "cpu",
    log: LogFn = _noop,
    progress: ProgressFn = _noop,
    should_stop: StopFn = lambda: False,
) -> GANTrained:
    """Train a WGAN-GP on the frozen GRU VAE's posterior latents of ``train_texts``."""
    vae.eval()
    mu, logvar = vae_posteriors(vae, tokenizer.encode_batch(list(train_texts)))
    valid_mu, _ = vae_posteriors(vae, tokenizer.encode_batch(list(valid_texts)))
    return gan_train_on_latents(
        mu, logvar, valid_mu, config=config, device=device, log=log, progress=progress, should_stop=should_stop,
        decode=lambda z: tokenizer.decode_batch(vae.generate(z, strategy="greedy")),
    )


def gan_train_on_latents(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    valid_mu: torch.Tensor,
    *,
    config: GANTrainConfig,
    decode: Callable[[torch.Tensor], list[str]],
    device: torch.device | str = "cpu",
    log: LogFn = _noop,
    progress: ProgressFn = _noop,
    should_stop: StopFn = lambda: False,
) -> GANTrained:
    """Train a WGAN-GP on posterior latents of any sentence VAE: real latents are samples of
    q(z|x) of the training sentences (``mu``, ``logvar``); ``valid_mu`` (held-out posterior means)
    calibrate the critic's realism score; ``decode`` turns the fixed noise batch's latents into
    texts for the curves."""
    seed_everything(config.seed)
    mu, logvar, valid_mu = mu.float().to(device), logvar.float().to(device), valid_mu.float().to(device)
    std = torch.exp(0.5 * logvar)
    gan = LatentGAN(
        GANConfig(latent_dim=mu.size(1), noise_dim=config.noise_dim, hidden_dim=config.hidden_dim,
                  layers=config.layers, gp_weight=config.gp_weight)
    ).to(device)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.lr, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam(gan.critic.parameters(), lr=config.lr, betas=(0.5, 0.9))
    noise_rng = torch.Generator().manual_seed(config.seed)
    fixed_noise = gan.noise(config.fixed_noise, generator=torch.Generator().manual_seed(config.seed + 1), device=device)

    def real_batch() -> torch.Tensor:
        index = torch.randint(0, mu.size(0), (config.batch_size,), generator=noise_rng).to(mu.device)
        return mu[index] + std[index] * torch.randn(config.batch_size, mu.size(1), generator=noise_rng).to(mu.device)

    started = time.monotonic()
    window = {"critic": 0.0, "wasserstein": 0.0, "gp": 0.0, "generator": 0.0, "mode_seeking_ratio": 0.0, "n": 0}
    stop_reason = "max_steps"
    step = 0
    fixed_samples: list[str] = []
    while step < config.steps:
        for _ in range(config.n_critic):
            real = real_batch()
            with torch.no_grad():
                fake = gan.sample(config.batch_size, generator=noise_rng)
            parts = critic_loss(gan.critic, real, fake.detach(), gp_weight=config.gp_weight)
            opt_c.zero_grad(set_to_none=True)
            parts.total.backward()
            opt_c.step()
        for p in gan.critic.parameters():
            p.requires_grad_(False)
        noise = gan.noise(config.batch_size, generator=noise_rng, device=device)
        fake = gan.generator(noise)
        g_loss = generator_loss(gan.critic, fake)
        ratio = mode_seeking_ratio(noise, fake)
        total = g_loss + config.diversity_weight / (ratio + 1e-5) if config.diversity_weight else g_loss
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        for p in gan.critic.parameters():
            p.requires_grad_(True)
        step += 1
        window["critic"] += float(parts.total.detach())
        window["wasserstein"] += float(parts.wasserstein.detach())
        window["gp"] += float(parts.gradient_penalty.detach())
        window["generator"] += float(g_loss.detach())
        window["mode_seeking_ratio"] += float(ratio.detach())
        window["n"] += 1
        if step % config.log_every == 0 or step == config.steps:
            n = window["n"]
            with torch.no_grad():
                fixed_z = gan.generator(fixed_noise)
                fixed_samples = decode(fixed_z)
                fixed_score = float(gan.critic(fixed_z).mean())
            log(step, "train", critic=window["critic"] / n, wasserstein=window["wasserstein"] / n,
                gradient_penalty=window["gp"] / n, generator=window["generator"] / n,
                mode_seeking_ratio=window["mode_seeking_ratio"] / n, fixed_noise_critic=fixed_score)
            window = {k: 0.0 for k in window} | {"n": 0}
            progress(step / config.steps, f"GAN step {step}/{config.steps}: {fixed_samples[0][:80]!r}")
        if config.max_seconds and time.monotonic() - started > config.max_seconds:
            stop_reason = "time_budget"
            break
        if should_stop():
            stop_reason = "stopped"
            break
    gan.eval()
    with torch.no_grad():
        real_scores = gan.critic(valid_mu)
        fake_latents = gan.sample(max(256, len(valid_mu)), generator=torch.Generator().manual_seed(config.seed))
        fake_scores = gan.critic(fake_latents)
    seconds = time.monotonic() - started
    metrics = {
        "steps": step,
        "stop_reason": stop_reason,
        "train_seconds": round(seconds, 2),
        "critic_steps_per_second": round(step * config.n_critic / max(seconds, 1e-9), 1),
        "validation_wasserstein": float(real_scores.mean() - fake_scores.mean()),
        # spread per latent dimension (mean std) of generated latents and of validation posterior means
        "generated_latent_std": round(float(fake_latents.std(dim=0).mean()), 4),
        "validation_latent_std": round(float(valid_mu.std(dim=0).mean()), 4) if len(valid_mu) > 1 else None,
        "fixed_noise_samples": fixed_samples,
    }
    return GANTrained(
        gan=gan,
        config=config,
        optimizer_states={"generator": opt_g.state_dict(), "critic": opt_c.state_dict()},
        metrics=metrics,
        critic_real_mean=float(real_scores.mean()),
        critic_real_std=float(real_scores.std()) if real_scores.numel() > 1 else 1.0,
    )


def gan_checkpoint_save(path: Path, trained: GANTrained, *, vae_label: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model_args": asdict(trained.gan.config),
        "state_dict": {k: v.detach().cpu() for k, v in trained.gan.state_dict().items()},
        "optimizers": trained.optimizer_states,
        "train_config": asdict(trained.config),
        "metrics": trained.metrics,
        "vae": vae_label,
        "critic_real_mean": trained.critic_real_mean,
        "critic_real_std": trained.critic_real_std,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


@dataclass
class GANCheckpoint:
    gan: LatentGAN
    vae_label: str
    critic_real_mean: float
    critic_real_std: float
    metrics: dict


def gan_checkpoint_load(path: Path, *, device: torch.device | str = "cpu") -> GANCheckpoint:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    gan = LatentGAN(GANConfig(**payload["model_args"]))
    gan.load_state_dict(payload["state_dict"])
    gan.to(device).eval()
    return GANCheckpoint(
        gan=gan,
        vae_label=payload["vae"],
        critic_real_mean=payload["critic_real_mean"],
        critic_real_std=max(payload["critic_real_std"], 1e-6),
        metrics=payload["metrics"],
    )
