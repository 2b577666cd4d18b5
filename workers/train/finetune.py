"""LoRA fine-tuning of a causal LM on chat examples (peft). No Django: the runner
(workers/runtime/finetune.py) gathers the examples, logs to the job and registers the adapter.

- Examples are chat messages ending with an assistant turn; the loss is on that turn's tokens
  only (the prompt, rendered with the chat template and ``add_generation_prompt``, is masked with
  -100), its end-of-turn token included so the model learns to stop.
- AdamW on the LoRA weights, linear warm-up then linear decay, gradient clipping; mini-batches
  right-padded; the mean token loss on the validation examples every ``eval_every`` steps;
  early stopping when it has not improved for ``patience`` evaluations; the best adapter weights
  are restored at the end.
- Seeded: the same examples, config and seed give the same adapter on one device.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from generation.text.tables import CsvError, csv_read
from workers.ml.amp import autocast
from workers.ml.building import model_building

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ROLES = ("system", "user", "assistant")


class ExamplesError(ValueError):
    """Training data that cannot be used (a bad JSONL line, no examples)."""


# --- data -------------------------------------------------------------------------------------


def bitext_rows(path: Path | str) -> list[dict]:
    """(instruction, response, intent) rows of a Bitext-format CSV (rows missing either text skipped)."""
    try:
        table = csv_read(path, columns=["instruction", "response"])
    except CsvError as exc:
        raise ExamplesError(str(exc)) from None
    return [
        {"instruction": r["instruction"].strip(), "response": r["response"].strip(), "intent": r.get("intent", "")}
        for r in table.rows
        if (r.get("instruction") or "").strip() and (r.get("response") or "").strip()
    ]


def chat_jsonl_read(path: Path | str, *, limit: int | None = None) -> list[list[dict]]:
    """Chat examples of a JSONL file: one ``{"messages": [{"role", "content"}, ...]}`` per line,
    the last message the assistant's (what ``feedback_export`` writes)."""
    examples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
            except (ValueError, KeyError, TypeError):
                raise ExamplesError(f"{path} line {number}: expected a JSON object with a \"messages\" list") from None
            examples.append(messages_check(messages, where=f"{path} line {number}"))
            if limit is not None and len(examples) >= limit:
                break
    return examples


def messages_check(messages, *, where: str) -> list[dict]:
    if not isinstance(messages, list) or len(messages) < 2:
        raise ExamplesError(f"{where}: \"messages\" must list at least a user and an assistant turn")
    clean = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ExamplesError(f"{where}: each message needs a role ({', '.join(ROLES)}) and a content string")
        clean.append({"role": m["role"], "content": m["content"]})
    if clean[-1]["role"] != "assistant" or not clean[-1]["content"].strip():
        raise ExamplesError(f"{where}: the last message must be a non-empty assistant turn")
    return clean


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # -100 where no loss

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != -100)


def example_encode(tokenizer, messages: list[dict], *, max_tokens: int) -> Encoded | None:
    """Token ids of the chat and labels on the last (assistant) turn only. The prompt is the
    rendering with the generation prompt (what serving feeds the model); the completion is the
    rest of the full rendering. Too long: the completion is cut; a prompt leaving fewer than 16
    tokens for it: None."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise ExamplesError("the chat template does not render the prompt as a prefix of the conversation")
    completion = full[len(prompt) :].rstrip("\n")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    room = max_tokens - len(prompt_ids)
    if room < 16:
        return None
    completion_ids = completion_ids[:room]
    return Encoded(input_ids=prompt_ids + completion_ids, labels=[-100] * len(prompt_ids) + completion_ids)


# --- training ---------------------------------------------------------------------------------


@dataclass
class LoraTrainConfig:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    lr: float = 2e-4
    weight_decay: float = 0.0
    batch_size: int = 8
    max_steps: int = 200
    epochs: float = 1.0  # training stops at max_steps or after this many passes, whichever is first
    warmup_steps: int = 10
    eval_every: int = 25
    patience: int = 3
    max_grad_norm: float = 1.0
    seed: int = 0
    target_modules: tuple[str, ...] = LORA_TARGETS
    # 0: every decoder layer; n: only the top n. The layers below run without a graph, so a step
    # costs their forward pass only (long retrieval-augmented prompts on CPU).
    top_layers: int = 0
    amp_dtype: str = ""  # "bfloat16": forward passes under autocast (x1.7 a float32 step on 2 CPU cores with AVX-512 BF16)


@dataclass
class LoraTrainResult:
    model: object  # peft PeftModel, best weights restored
    metrics: dict
    history: list[dict] = field(default_factory=list)


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _batch(examples: Sequence[Encoded], pad_id: int, device) -> dict[str, torch.Tensor]:
    length = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), length), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def _token_loss_sum(model, batch: dict[str, torch.Tensor], amp_dtype: str = "") -> tuple[torch.Tensor, int]:
    """Sum of the next-token losses over the labelled tokens of a batch, and their count. The
    output layer runs on the labelled positions only: with long prompts (retrieved sources) most
    positions are prompt, and their vocabulary-wide logits cost time and memory for no loss."""
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    with autocast(batch["input_ids"].device, amp_dtype):
        hidden = causal.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        logits = causal.get_output_embeddings()(hidden[:, :-1][keep])
    loss = torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")
    return loss, int(keep.sum())


@torch.no_grad()
def validation_loss(model, examples: Sequence[Encoded], *, pad_id: int, batch_size: int = 8) -> float:
    """Mean token loss of the assistant turns of ``examples`` (nan when there are none)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        loss, n = _token_loss_sum(model, _batch(examples[start : start + batch_size], pad_id, device))
        total += float(loss)
        tokens += n
    model.train(was_training)
    return total / tokens if tokens else float("nan")


@model_building
def lora_wrap(model, config: LoraTrainConfig):
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in config.target_modules if t in present]
    if not targets:
        raise ExamplesError(f"none of the LoRA target modules {config.target_modules} is in the model")
    layers = None
    total = getattr(model.config, "num_hidden_layers", 0)
    if config.top_layers and total:
        layers = list(range(max(0, total - config.top_layers), total))
    lora = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets,
        task_type="CAUSAL_LM", bias="none", layers_to_transform=layers,
    )
    return get_peft_model(model, lora)


def lora_train(
    model,
    tokenizer,
    train: Sequence[Encoded],
    validation: Sequence[Encoded],
    config: LoraTrainConfig,
    *,
    on_step: Callable[[int, float, dict], None] | None = None,
    on_eval: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_from: Path | str | None = None,
) -> LoraTrainResult:
    """Wrap ``model`` (float32, not shared with serving) with LoRA and train it on ``train``.
    ``on_step(step, loss, stats)`` after each optimizer step, ``on_eval(step, validation_loss)``
    after each evaluation; ``should_stop`` ends training early, keeping the best weights.
    ``init_from``: an adapter directory of the same LoRA config to start from (a run continued
    in another time slot; its optimizer starts afresh)."""
    if not train:
        raise ExamplesError("no training examples")
    seed_all(config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    peft_model = lora_wrap(model, config)
    if init_from is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(Path(init_from) / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(peft_model, {k: v.float() for k, v in weights.items()})
        if not weights or any("lora_" in k for k in result.unexpected_keys):
            raise ExamplesError(f"the adapter in {init_from} does not fit this LoRA config")
    device = next(peft_model.parameters()).device
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = max(1, min(config.max_steps, math.ceil(config.epochs * steps_per_epoch)))
    warmup = min(config.warmup_steps, total_steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    before = validation_loss(peft_model, validation, pad_id=pad_id, batch_size=config.batch_size) if validation else None
    if on_eval and before is not None:
        on_eval(0, before)
    best_loss, best_step, since_best = before if before is not None else math.inf, 0, 0
    best_state = {k: v.detach().clone() for k, v in peft_model.state_dict().items() if "lora_" in k}
    history: list[dict] = [{"step": 0, "validation_loss": before}] if before is not None else []
    rng = random.Random(config.seed)
    order: list[int] = []
    step, examples_seen, tokens_seen, train_seconds = 0, 0, 0, 0.0
    stopped_early = False
    peft_model.train()
    while step < total_steps:
        if not order:
            order = list(range(len(train)))
            rng.shuffle(order)
        picked = [train[order.pop()] for _ in range(min(config.batch_size, len(order)))]
        started = time.perf_counter()
        batch = _batch(picked, pad_id, device)
        loss_sum, n_tokens = _token_loss_sum(peft_model, batch, config.amp_dtype)
        loss = loss_sum / max(n_tokens, 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        train_seconds += time.perf_counter() - started
        examples_seen += len(picked)
        tokens_seen += int(batch["attention_mask"].sum())
        if on_step:
            on_step(step, float(loss.detach()), {"lr": scheduler.get_last_lr()[0], "total_steps": total_steps})
        last = step == total_steps or (should_stop is not None and should_stop())
        if validation and (step % config.eval_every == 0 or last):
            current = validation_loss(peft_model, validation, pad_id=pad_id, batch_size=config.batch_size)
            history.append({"step": step, "train_loss": float(loss.detach()), "validation_loss": current})
            if on_eval:
                on_eval(step, current)
            if current < best_loss:
                best_loss, best_step, since_best = current, step, 0
                best_state = {k: v.detach().clone() for k, v in peft_model.state_dict().items() if "lora_" in k}
            else:
                since_best += 1
                if since_best >= config.patience:
                    stopped_early = True
                    break
        if should_stop is not None and should_stop():
            stopped_early = True
            break
    if validation:
        peft_model.load_state_dict(best_state, strict=False)
    else:
        best_step = step
    peft_model.eval()
    after = validation_loss(peft_model, validation, pad_id=pad_id, batch_size=config.batch_size) if validation else None
    metrics = {
        "validation_loss_before": round(before, 5) if before is not None else None,
        "validation_loss_after": round(after, 5) if after is not None else None,
        "best_step": best_step,
        "steps": step,
        "planned_steps": total_steps,
        "early_stopped": stopped_early,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "examples_seen": examples_seen,
        "train_seconds": round(train_seconds, 2),
        "examples_per_second": round(examples_seen / train_seconds, 3) if train_seconds else None,
        "tokens_per_second": round(tokens_seen / train_seconds, 1) if train_seconds else None,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
    }
    return LoraTrainResult(model=peft_model, metrics=metrics, history=history)
