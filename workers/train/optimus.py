"""Training, evaluation and checkpoints of the pretrained sentence VAE (``workers.ml.optimus``).

No Django: the caller resolves the encoder and decoder directories (``encoder_dir``,
``decoder_dir``) and passes callbacks for curves (``log(step, split, **values)``), progress and
stopping, as for the GRU VAE (``workers.train.genmodels``, whose corpus helpers and loss are shared).

Parts: the sentence encoder (a sentence-transformers directory; its transformer and mean pooling)
with a head to (mu, logvar); the causal LM with LoRA adapters (peft) on ``lora_targets``; the
latent heads (prefix vectors, added embedding). With ``encoder_train_layers=0`` the encoder is
frozen and each sentence's pooled vector is computed once before training (a CPU step then costs
the decoder alone); with 1 its last layer is trained too.

Training: AdamW on the LoRA weights, the heads and the encoder's trained layers; gradient
clipping; the KL weight cycles (``kl_weight``, Fu et al. 2019: each cycle starts as an
autoencoder) and each dimension's KL counts as at least ``free_bits`` nats (Kingma et al. 2016,
Optimus's "KL thresholding"); forward passes under bf16 autocast where ``amp_dtype`` says; the
best validation ELBO's state is kept; a time budget and a stop callback end training early.

Checkpoints hold the model config (``model_args``), the trained weights only (LoRA, heads, the
encoder's trained layers: a few MB; the pretrained parts are named, not copied), the training
config, the metrics, the encoder/decoder names and SHA-1 hashes of the training sentences, and load
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from workers.ml.amp import autocast
from workers.ml.building import model_building
from workers.ml.optimus import OptimusConfig, OptimusVAE, WordIndex
from workers.ml.text_metrics import corpus_bleu, text_hash, text_words
from workers.ml.vae import elbo_figures, kl_weight, vae_loss
from workers.train.genmodels import corpus_split, seed_everything

LogFn = Callable[..., None]
ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]

ARCHITECTURE = "optimus"
LORA_DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


# After these steps a time-budgeted run measures its step time and, when the budget cannot hold
# the planned steps, plans only those it can (with validation's share taken off).
BUDGET_PLAN_STEPS = (10, 50)
BUDGET_MARGIN = 0.85


@dataclass
class OptimusTrainConfig:
    """CPU-sized defaults (``make run``'s seeded job on 2 cores); ``gpu_sized`` for a GPU."""

    latent_dim: int = 32
    prefix_len: int = 4
    memory: bool = True  # z as key/value slots in every decoder layer (OptimusConfig.memory)
    add_to_embeddings: bool = True
    encoder_train_layers: int = 0  # 0: frozen, pooled outputs computed once; 1: the last layer trained
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_DEFAULT_TARGETS
    max_len: int = 32  # decoder tokens per sentence, the end token included
    batch_size: int = 16
    lr: float = 1e-3  # the heads'
    lora_lr: float = 5e-4
    grad_clip: float = 1.0
    max_epochs: int = 6  # the product corpus (5,600 training sentences): 2,100 steps, more than a CPU budget holds (2.4 s a step on 2 cores with AMX, 6.4 with AVX2): the time budget then cuts the KL cycles to fit
    max_steps: int = 0  # 0: epochs decide
    max_seconds: float = 0.0  # 0: no time budget
    kl_schedule: str = "cyclical"
    kl_cycles: int = 4
    kl_ratio: float = 0.5  # of each cycle spent raising beta from 0
    kl_warmup_steps: int = 200  # linear schedule only
    beta: float = 1.0
    # Nats per latent dimension: at 0.5 the KL fell to the 16-nat floor and the decoder wrote the
    # same sentence for every z; at 1.5 it stays near 40 nats and samples differ (docs/benchmarks.md).
    free_bits: float = 1.5
    # Share of the decoder's input words hidden while training (their token embedding zeroed; the
    # latent's added vector stays): a pretrained LM predicts the next word from the words before
    # it and learns to ignore z (Bowman et al. 2016's word dropout, against posterior collapse).
    word_dropout: float = 0.0
    eval_every: int = 50
    patience: int = 0  # 0: no early stopping (a cyclical schedule's ELBO dips every cycle)
    validation_max: int = 96  # sentences validated at every evaluation
    amp_dtype: str = ""  # "bfloat16": forward passes under autocast
    seed: int = 0

    @classmethod
    def gpu_sized(cls, **overrides: Any) -> OptimusTrainConfig:
        """Larger settings for a GPU: the encoder's last layer trained, LoRA on every projection,
        bigger batches, more epochs, bf16."""
        values = dict(
            latent_dim=64, prefix_len=8, encoder_train_layers=1, lora_rank=16, lora_alpha=32,
            lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
            max_len=48, batch_size=64, max_epochs=30, eval_every=100, validation_max=500, amp_dtype="bfloat16",
        )
        return cls(**{**values, **overrides})


@dataclass
class OptimusParts:
    encoder_tokenizer: Any
    decoder_tokenizer: Any
    model: OptimusVAE
    word_index: WordIndex | None = field(default=None, repr=False)  # word_token_groups, built on first use


@model_building
def optimus_build(config: OptimusTrainConfig, *, encoder_dir: str | Path, decoder_dir: str | Path,
                  device: torch.device | str = "cpu", train: bool = True) -> OptimusParts:
    """The model from the pretrained encoder and decoder directories: float32, LoRA-wrapped
    decoder, the encoder frozen but for its last ``encoder_train_layers`` layers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    encoder_tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    encoder = AutoModel.from_pretrained(str(encoder_dir), dtype=torch.float32)
    decoder_tokenizer = AutoTokenizer.from_pretrained(str(decoder_dir))
    decoder = AutoModelForCausalLM.from_pretrained(str(decoder_dir), dtype=torch.float32, attn_implementation="sdpa")
    for p in [*encoder.parameters(), *decoder.parameters()]:
        p.requires_grad_(False)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if config.encoder_train_layers and layers is not None:
        for layer in list(layers)[-config.encoder_train_layers :]:
            for p in layer.parameters():
                p.requires_grad_(True)
    present = {name.rsplit(".", 1)[-1] for name, _ in decoder.named_modules()}
    targets = [t for t in config.lora_targets if t in present]
    if not targets:
        raise ValueError(f"none of the LoRA target modules {config.lora_targets} is in the decoder")
    decoder = get_peft_model(decoder, LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha,
                                                 lora_dropout=config.lora_dropout, target_modules=targets,
                                                 task_type="CAUSAL_LM", bias="none"))
    end = decoder_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if end is None or (end == decoder_tokenizer.unk_token_id and decoder_tokenizer.unk_token != "<|endoftext|>"):
        end = decoder_tokenizer.eos_token_id
    special = set(decoder_tokenizer.all_special_ids) | set(getattr(decoder_tokenizer, "added_tokens_decoder", {}) or {})
    line_breaks, blanks = _whitespace_ids(decoder_tokenizer)
    special |= line_breaks
    model_config = OptimusConfig(
        encoder_dim=encoder.config.hidden_size,
        decoder_dim=decoder.get_input_embeddings().weight.size(1),
        latent_dim=config.latent_dim,
        prefix_len=config.prefix_len,
        memory=config.memory,
        add_to_embeddings=config.add_to_embeddings,
        max_len=config.max_len,
        bos_id=int(end),
        eos_id=int(end),
        banned_ids=sorted(int(i) for i in special if i != end and i < decoder.get_input_embeddings().weight.size(0)),
        encoder_pad_id=int(encoder_tokenizer.pad_token_id or 0),
        prefix_init_ids=_prompt_ids(decoder_tokenizer, config.prefix_len),
        blank_ids=sorted(blanks),
    )
    seed_everything(config.seed)
    model = OptimusVAE(model_config, encoder=encoder, decoder=decoder).to(device)
    model.train(train)
    return OptimusParts(encoder_tokenizer=encoder_tokenizer, decoder_tokenizer=decoder_tokenizer, model=model)


PREFIX_PROMPT = "Write one sentence:"


def _prompt_ids(tokenizer, length: int) -> list[int]:
    """``length`` token ids of ``PREFIX_PROMPT`` (cut, or padded on the left with its first token)."""
    ids = tokenizer(PREFIX_PROMPT, add_special_tokens=False)["input_ids"][-length:]
    return [ids[0]] * (length - len(ids)) + ids if ids else []


def _whitespace_ids(tokenizer) -> tuple[set[int], set[int]]:
    """(tokens holding a line break or tab, tokens that print as spaces only), in one pass over
    the vocabulary. A sentence has no line break (the corpus's whitespace is normalised), but after
    its end-of-text token SmolLM2's most likely next token is a newline, and greedy decoding then
    wrote blank lines (read back as empty sentences); and a sentence never starts with a blank."""
    line_breaks, blanks = set(), set()
    for token, i in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token])
        if any(ch in text for ch in "\n\r\t"):
            line_breaks.add(i)
        if not text.strip():
            blanks.add(i)
    return line_breaks, blanks


def trainable_state(model: OptimusVAE) -> dict[str, torch.Tensor]:
    """What training changed: the heads, the LoRA weights, the encoder's trained layers."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}


# --- tokenising ---------------------------------------------------------------------------------


def encoder_inputs(parts: OptimusParts, texts: Sequence[str], device=None, *, max_tokens: int = 64) -> dict[str, torch.Tensor]:
    enc = parts.encoder_tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return {"encoder_ids": enc["input_ids"].to(device), "encoder_mask": enc["attention_mask"].to(device)}


def decoder_ids(parts: OptimusParts, texts: Sequence[str]) -> list[list[int]]:
    return [parts.decoder_tokenizer(" ".join(t.split()), add_special_tokens=False)["input_ids"] for t in texts]


def ids_decode(parts: OptimusParts, sequences: list[list[int]]) -> list[str]:
    return [" ".join(parts.decoder_tokenizer.decode(s, skip_special_tokens=True).split()) for s in sequences]


def keep_word_ids(parts: OptimusParts, word: str) -> list[list[int]]:
    """A word's token sequences as the decoder may write it: after a space or first, as given
    and capitalised."""
    word = " ".join(word.split())
    forms = {word, word[:1].upper() + word[1:]}
    tokenize = parts.decoder_tokenizer
    seqs = {tuple(tokenize(prefix + form, add_special_tokens=False)["input_ids"]) for form in forms for prefix in (" ", "")}
    # a sequence that starts with a bare space token (" 4K" -> " ", "4", "K") would push spaces
    return [list(seq) for seq in sorted(seqs) if seq and tokenize.decode([seq[0]]).strip()]


@torch.no_grad()
def pooled_vectors(parts: OptimusParts, texts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
    """The encoder's pooled vector of each text (B, encoder_dim), in order."""
    model = parts.model
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model.pool(**_enc_kwargs(encoder_inputs(parts, texts[i : i + batch_size], device)))
           for i in range(0, len(texts), batch_size)]
    model.train(was_training)
    return torch.cat(out).float() if out else torch.zeros(0, model.config.encoder_dim)


def _enc_kwargs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"input_ids": batch["encoder_ids"], "attention_mask": batch["encoder_mask"]}


@torch.no_grad()
def texts_posterior(parts: OptimusParts, texts: Sequence[str], *, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of each text, in order."""
    if not texts:
        d = parts.model.config.latent_dim
        return torch.zeros(0, d), torch.zeros(0, d)
    mu, logvar = parts.model.encode_pooled(pooled_vectors(parts, texts, batch_size=batch_size).to(
        next(parts.model.parameters()).device))
    return mu.float(), logvar.float()


def word_token_groups(parts: OptimusParts) -> WordIndex:
    """The decoder vocabulary's words (``WordIndex``): each token's word (an index shared by
    " chill", "Chill" and " Chill"), or -1, for the tokens that hold a whole word of three letters
    or more, after a space or first in a sentence; each token's text, to join the words written
    in several tokens. A repetition penalty on them leaves punctuation, numbers and word pieces
    ("ing") alone, which a sentence repeats as it should."""
    if parts.word_index is not None:
        return parts.word_index
    tokenizer = parts.decoder_tokenizer
    vocab_size = parts.model.decoder.get_input_embeddings().weight.size(0)
    groups = torch.full((vocab_size,), -1, dtype=torch.long)
    words: dict[str, int] = {}
    pieces = [tokenizer.decode([token_id]) for token_id in range(min(vocab_size, len(tokenizer)))]
    for token_id, piece in enumerate(pieces):
        word = piece.strip()
        first = piece.startswith(" ") or word[:1].isupper()  # after a space, or a sentence's first word
        if first and len(word) >= 3 and word.isalpha():
            groups[token_id] = words.setdefault(word.lower(), len(words))
    parts.word_index = WordIndex(groups=groups, pieces=pieces, words=words)
    return parts.word_index


@torch.no_grad()
def latents_texts(parts: OptimusParts, z: torch.Tensor, *, decoding: str = "greedy", temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0, generator: torch.Generator | None = None, batch_size: int = 64,
                  amp_dtype: str = "", keep_words: Sequence[str] = (), anchor_words: Sequence[str] = (),
                  repetition_penalty: float = 1.0, keep_ramp: int = 0, keep_hold: bool = False) -> list[str]:
    """Latents -> sentences; ``keep_words``: words each sentence is guided to write
    (``OptimusVAE.generate``'s ``keep``, ``keep_ramp``, ``keep_hold``); ``anchor_words``: words it is nudged towards (its
    ``anchor``); ``repetition_penalty`` on the words already written (``word_token_groups``)."""
    model = parts.model
    device = next(model.parameters()).device
    keep = [keep_word_ids(parts, word) for word in keep_words if word.strip()]
    anchor = [keep_word_ids(parts, word) for word in anchor_words if word.strip()]
    word_index = None
    if keep or anchor or repetition_penalty != 1.0:  # kept on the model's device: moved once, not per call
        word_index = parts.word_index = word_token_groups(parts).to(device)
    repeat_words = word_index if repetition_penalty != 1.0 else None
    out: list[str] = []
    for start in range(0, z.size(0), batch_size):
        with autocast(device, amp_dtype):
            ids = model.generate(z[start : start + batch_size].to(device), strategy=decoding, temperature=temperature,
                                 top_k=top_k, top_p=top_p, generator=generator, keep=keep, anchor=anchor,
                                 repeat_words=repeat_words, repetition_penalty=repetition_penalty,
                                 keep_ramp=keep_ramp, keep_hold=keep_hold, word_index=word_index)
        out += ids_decode(parts, ids)
    return out


# --- training -------------------------------------------------------------------------------------


@dataclass
class OptimusTrained:
    parts: OptimusParts
    config: OptimusTrainConfig
    optimizer_state: dict
    metrics: dict[str, Any]
    train_texts: list[str]
    valid_texts: list[str]
    history: list[dict] = field(default_factory=list)


def _batch(parts: OptimusParts, texts: list[str], ids: list[list[int]], pooled: torch.Tensor | None, device) -> dict:
    batch = parts.model.decoder_batch(ids, device)
    if pooled is not None:
        batch["pooled"] = pooled.to(device)
    else:
        batch.update(encoder_inputs(parts, texts, device))
    return batch


@torch.no_grad()
def optimus_evaluate(parts: OptimusParts, texts: Sequence[str], *, batch_size: int = 32, seed: int = 0,
                     amp_dtype: str = "", with_mu: bool = False) -> dict[str, Any]:
    """Per sentence (nats): ELBO (single-sample, beta = 1, no free bits), reconstruction NLL, KL,
    per-token NLL and perplexity bound, active units (as ``vae_evaluate`` for the GRU VAE)."""
    model = parts.model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    texts = list(texts)
    ids = decoder_ids(parts, texts)
    recon = kl = 0.0
    tokens = 0
    mus = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        batch = _batch(parts, chunk, ids[start : start + batch_size], None, device)
        mu, logvar = model.encode(batch["encoder_ids"], batch["encoder_mask"])
        z = model.reparameterize(mu, logvar, generator=noise)
        with autocast(device, amp_dtype):
            logits = model.decode(z, batch["decoder_ids"], batch["decoder_mask"])
        parts_ = vae_loss(logits, batch["targets"], mu, logvar, beta=1.0, pad_id=-100)
        n = len(chunk)
        recon += float(parts_.recon) * n
        kl += float(parts_.kl) * n
        tokens += parts_.tokens
        mus.append(mu.float().cpu())
    model.train(was_training)
    return elbo_figures(recon=recon, kl=kl, tokens=tokens, mus=mus, sentences=len(texts),
                        latent_dim=model.config.latent_dim, with_mu=with_mu)


def optimus_train(
    texts: Sequence[str],
    *,
    config: OptimusTrainConfig,
    encoder_dir: str | Path,
    decoder_dir: str | Path,
    validation_fraction: float = 0.1,
    device: torch.device | str = "cpu",
    log: LogFn = _noop,
    progress: ProgressFn = _noop,
    should_stop: StopFn = lambda: False,
) -> OptimusTrained:
    """Train the pretrained sentence VAE on ``texts`` (already split into sentences)."""
    seed_everything(config.seed)
    train_texts, valid_texts = corpus_split(texts, validation_fraction=validation_fraction, seed=config.seed,
                                            validation_max=config.validation_max)
    if len(train_texts) < 2 or not valid_texts:
        raise ValueError(f"Need at least 3 sentences to train and validate on, got {len(texts)}")
    started = time.monotonic()
    parts = optimus_build(config, encoder_dir=encoder_dir, decoder_dir=decoder_dir, device=device)
    model = parts.model
    train_ids = decoder_ids(parts, train_texts)
    pooled = pooled_vectors(parts, train_texts)
    model.moments_init(pooled)
    if config.encoder_train_layers:  # the encoder's outputs change while training: encode every batch
        pooled = None
    lora = [p for n, p in model.decoder.named_parameters() if p.requires_grad]
    heads = [p for m in model.heads() for p in m.parameters()]
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": heads, "lr": config.lr}, {"params": lora, "lr": config.lora_lr}]
    if enc:
        groups.append({"params": enc, "lr": config.lora_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    trainable = heads + lora + enc
    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total_steps = steps_per_epoch * config.max_epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    best: dict[str, Any] | None = None
    best_state: dict | None = None
    stale = 0
    stop_reason = "max_steps"
    step = 0
    seen = 0
    window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}
    history: list[dict] = []
    setup_seconds = time.monotonic() - started

    def beta_at(at: int) -> float:
        return kl_weight(at, schedule=config.kl_schedule, total_steps=total_steps, warmup_steps=config.kl_warmup_steps,
                         cycles=config.kl_cycles, ratio=config.kl_ratio, beta=config.beta)

    def evaluate() -> bool:
        nonlocal best, best_state, stale
        figures = optimus_evaluate(parts, valid_texts, seed=config.seed, amp_dtype=config.amp_dtype)
        log(step, "validation", elbo=figures["elbo"], recon=figures["recon_nll"], kl=figures["kl"],
            active_units=figures["active_units"])
        history.append({"step": step, **figures})
        # Keep states where the KL term is at full weight: an autoencoder phase's ELBO is not
        # what is wanted, and its latent is not yet regularised towards the prior.
        at_ceiling = beta_at(max(0, step - 1)) >= config.beta or step >= total_steps
        if at_ceiling and (best is None or figures["elbo"] > best["elbo"]):
            best = {**figures, "step": step}
            best_state = trainable_state(model)
            stale = 0
        elif at_ceiling:
            stale += 1
        return bool(config.patience) and stale >= config.patience

    model.train()
    loop_started = time.monotonic()
    epochs_steps, plan_mark = total_steps, (0, loop_started)
    while step < total_steps:
        order = list(range(len(train_ids)))
        rng.shuffle(order)
        # length-bucketed batches: sort within pools of 20 batches, then shuffle the batches
        pool = config.batch_size * 20
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(train_ids[i]))
            batches += [chunk[i : i + config.batch_size] for i in range(0, len(chunk), config.batch_size)]
        rng.shuffle(batches)
        for indices in batches:
            if step >= total_steps:
                break
            batch = _batch(parts, [train_texts[i] for i in indices], [train_ids[i] for i in indices],
                           pooled[indices] if pooled is not None else None, device)
            beta = beta_at(step)
            with autocast(device, config.amp_dtype):
                logits, mu, logvar, _ = model(batch, word_dropout=config.word_dropout)
            loss = vae_loss(logits, batch["targets"], mu, logvar, beta=beta, free_bits=config.free_bits, pad_id=-100)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            step += 1
            seen += len(indices)
            if step in BUDGET_PLAN_STEPS and config.max_seconds:
                # The KL cycles are cut from the steps the time budget allows, not from the
                # epochs asked for: on a slow CPU a 6-epoch plan would stop inside its first
                # cycle, before the KL term ever reached full weight. Planned twice, the second
                # time from the steps since the first (the first steps run slower).
                now = time.monotonic()
                per_step = (now - plan_mark[1]) / (step - plan_mark[0])
                plan_mark = (step, now)
                reachable = step + int(BUDGET_MARGIN * (config.max_seconds - (now - started)) / per_step)
                budget_steps = max(step + 1, min(epochs_steps, reachable))
                if budget_steps != total_steps:
                    log(step, "train", planned_steps=epochs_steps, budget_steps=budget_steps)
                    total_steps = budget_steps
            window["loss"] += float(loss.total.detach())
            window["recon"] += float(loss.recon.detach())
            window["kl"] += float(loss.kl.detach())
            window["n"] += 1
            if step % config.eval_every == 0 or step == total_steps:
                n = window["n"]
                log(step, "train", loss=window["loss"] / n, recon=window["recon"] / n, kl=window["kl"] / n, kl_weight=beta)
                window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}
                if evaluate():
                    stop_reason = "early_stopping"
                    total_steps = step
                    break
                shown = f"validation ELBO {best['elbo']:.2f}" if best else f"recon {history[-1]['recon_nll']:.2f}"
                progress(step / total_steps, f"VAE step {step}/{total_steps}: {shown}")
            if config.max_seconds and time.monotonic() - started > config.max_seconds:
                stop_reason = "time_budget"
                total_steps = step
                break
            if should_stop():
                stop_reason = "stopped"
                total_steps = step
                break
    if window["n"] or best is None:
        evaluate()
    if best is None:  # stopped before the KL weight reached its ceiling: the last state
        best = {**history[-1]}
        best_state = trainable_state(model)
    seconds = time.monotonic() - started
    model.load_state_dict(best_state, strict=False)
    model.eval()
    metrics = {
        "architecture": ARCHITECTURE,
        "validation": best,
        "best_step": best["step"],
        "steps": step,
        "stop_reason": stop_reason,
        "train_sentences": len(train_texts),
        "validation_sentences": len(valid_texts),
        "train_seconds": round(seconds, 2),
        "setup_seconds": round(setup_seconds, 2),
        "sentences_per_second": round(seen / max(time.monotonic() - loop_started, 1e-9), 2),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "device": str(device),
    }
    return OptimusTrained(parts=parts, config=config, optimizer_state=optimizer.state_dict(), metrics=metrics,
                          train_texts=list(train_texts), valid_texts=list(valid_texts), history=history)


@torch.no_grad()
def optimus_reconstruction_bleu(parts: OptimusParts, texts: Sequence[str], *, batch_size: int = 32,
                                amp_dtype: str = "") -> float:
    """Corpus BLEU of greedy decodes of the posterior means against the inputs."""
    mu, _ = texts_posterior(parts, texts)
    outputs = latents_texts(parts, mu, decoding="greedy", batch_size=batch_size, amp_dtype=amp_dtype)
    return corpus_bleu(outputs, list(texts))


# --- checkpoints ------------------------------------------------------------------------------------


def optimus_checkpoint_save(path: Path, trained: OptimusTrained, *, encoder: str, decoder: str,
                            extra: dict | None = None, with_optimizer: bool = False) -> Path:
    """``encoder``/``decoder``: the names the loader resolves again (settings' names or paths).
    The optimizer state is left out unless asked for (it doubles the file for no use in serving)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = asdict(trained.config)
    config["lora_targets"] = list(config["lora_targets"])
    payload = {
        "architecture": ARCHITECTURE,
        "model_args": asdict(trained.parts.model.config),
        "state_dict": trainable_state(trained.parts.model),
        "train_config": config,
        "encoder": encoder,
        "decoder": decoder,
        "metrics": trained.metrics,
        "train_text_hashes": sorted({text_hash(t) for t in trained.train_texts}),
        # the words it was trained on: with its tokenizers' whole words, what a decoded word may be
        # (an invented "Vergo" is not: workers.runtime.genmodels drops such outputs)
        "train_words": sorted(text_words(trained.train_texts)),
        **({"optimizer": trained.optimizer_state} if with_optimizer else {}),
        **(extra or {}),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


@dataclass
class OptimusCheckpoint:
    parts: OptimusParts
    train_config: dict
    metrics: dict
    train_text_hashes: set[str]
    encoder: str
    decoder: str
    train_words: set[str] = field(default_factory=set)  # empty for checkpoints saved before them


def checkpoint_architecture(path: Path) -> str:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return payload.get("architecture", "gru")


@model_building
def optimus_checkpoint_load(path: Path, *, encoder_dir: str | Path, decoder_dir: str | Path,
                            device: torch.device | str = "cpu", payload: dict | None = None,
                            merge: bool = True) -> OptimusCheckpoint:
    """The model for inference: the pretrained parts from the directories, the trained weights
    from the checkpoint; ``merge`` folds the LoRA weights into the decoder (no adapter matmuls
    per token)."""
    payload = payload or torch.load(path, map_location="cpu", weights_only=True)
    train_config = dict(payload["train_config"])
    train_config["lora_targets"] = tuple(train_config["lora_targets"])
    train_config.setdefault("memory", False)  # saved before the per-layer memory: an input prefix
    config = OptimusTrainConfig(**{k: v for k, v in train_config.items() if k in OptimusTrainConfig.__dataclass_fields__})
    parts = optimus_build(config, encoder_dir=encoder_dir, decoder_dir=decoder_dir, device="cpu", train=False)
    missing = parts.model.load_state_dict(payload["state_dict"], strict=False)
    if missing.unexpected_keys:
        raise ValueError(f"checkpoint {path} does not fit the model: unexpected {missing.unexpected_keys[:5]}")
    if merge:
        parts.model.decoder = parts.model.decoder.merge_and_unload()
    parts.model.to(device).eval()
    for p in parts.model.parameters():
        p.requires_grad_(False)
    return OptimusCheckpoint(parts=parts, train_config=train_config, metrics=payload["metrics"],
                             train_text_hashes=set(payload["train_text_hashes"]), encoder=payload["encoder"],
                             decoder=payload["decoder"], train_words=set(payload.get("train_words", ())))
