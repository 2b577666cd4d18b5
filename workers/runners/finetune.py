"""Runner of the ``finetune`` kind: gather chat examples, split them, LoRA-train a fresh float32
copy of the base LM (``workers.train.finetune``), save the adapter, score it, register it.

Splits (seeded): the Bitext rows are shuffled once; the first ``eval_replies`` are held back for
the reply figures, the next ``validation_fraction`` (at most ``max_validation``) are the
validation set, the rest train (at most ``max_examples``). JSONL and brand examples are split
into train and validation the same way. No held-back or validation example is trained on.

The reply figures (purpose reply, ``eval_replies`` > 0) are those of ``manage.py
replies_evaluate`` on the held-back rows, for the base model and for the adapter (merged as
serving merges it): the reply service (retrieval + model) and the bare model without retrieval,
each as mean MiniLM cosine to the reference replies, rate of repeated word 4-grams and mean words.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.runner import CandidateResult, JobResult, RunnerContext
from workers.evaluation.replies import replies_figures
from workers.ml.building import MODEL_BUILD_LOCK

logger = logging.getLogger(__name__)

FAMILY = "lm_adapter"


def reply_chat(instruction: str, response: str) -> list[dict]:
    """A Bitext row as the reply service's chat (its system prompt, no sources) + the answer."""
    from workers.runners.reply import reply_messages

    turns = reply_messages(message=instruction, history=[], channel="chat", tone="neutral", answers=[])
    return [*turns, {"role": "assistant", "content": response}]


def _split(items: list, *, fraction: float, cap: int, rng: random.Random) -> tuple[list, list]:
    items = list(items)
    rng.shuffle(items)
    k = min(cap, max(1, math.ceil(len(items) * fraction))) if len(items) >= 2 else 0
    return items[k:], items[:k]


def examples_gather(params: dict) -> dict:
    """{"train": [...chats], "validation": [...chats], "held_back": [bitext rows], "sources": {...}}."""
    from workers.train.finetune import ExamplesError, bitext_rows, chat_jsonl_read

    rng = random.Random(params.get("seed", 0))
    train, validation, held_back, sources = [], [], [], {}
    fraction, cap = params.get("validation_fraction", 0.05), params.get("max_validation", 100)
    try:
        if params.get("include_bitext"):
            rows = bitext_rows(settings.GENAI_FINETUNE_BITEXT_CSV)
            rng.shuffle(rows)
            n_held = params.get("eval_replies", 0) if params["purpose"] == "reply" else 0
            held_back, rest = rows[:n_held], rows[n_held:]
            k = min(cap, max(1, math.ceil(len(rest) * fraction)))
            validation += [reply_chat(r["instruction"], r["response"]) for r in rest[:k]]
            train += [reply_chat(r["instruction"], r["response"]) for r in rest[k:]]
            sources["bitext"] = len(rows)
        if params.get("dataset_jsonl"):
            chats = chat_jsonl_read(params["dataset_jsonl"])
            t, v = _split(chats, fraction=fraction, cap=cap, rng=rng)
            train, validation = train + t, validation + v
            sources["jsonl"] = len(chats)
    except (ExamplesError, OSError) as exc:
        raise PermanentJobError(f"Training data: {exc}") from None
    if params["purpose"] == "copy":
        from workers.runners.copy import copy_training_examples

        chats = [e["messages"] for e in copy_training_examples(brand=params.get("brand") or None)]
        t, v = _split(chats, fraction=fraction, cap=cap, rng=rng)
        train, validation = train + t, validation + v
        sources["brand_examples"] = len(chats)
    rng.shuffle(train)
    return {"train": train[: params.get("max_examples", len(train))], "validation": validation,
            "held_back": held_back, "sources": sources}


def finetune_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    import torch
    from transformers import AutoModelForCausalLM

    from generation.lm import lm_prepare, tokenizer_get
    from generation.services.model_versions import (
        model_version_artifact_dir,
        model_version_next_number,
        model_version_register,
    )
    from workers.runtime.device import device_amp_dtype, device_get
    from workers.train.finetune import (
        ExamplesError,
        LoraTrainConfig,
        example_encode,
        lora_train,
    )

    started = time.monotonic()
    data = examples_gather(params)
    tokenizer = tokenizer_get(settings.GENAI_LM_MODEL)
    max_tokens = params.get("max_tokens", settings.GENAI_FINETUNE_MAX_TOKENS)
    try:
        train = [e for e in (example_encode(tokenizer, m, max_tokens=max_tokens) for m in data["train"]) if e]
        validation = [e for e in (example_encode(tokenizer, m, max_tokens=max_tokens) for m in data["validation"]) if e]
    except ExamplesError as exc:
        raise PermanentJobError(str(exc)) from None
    if not train:
        raise PermanentJobError("No training examples (check the dataset, the brand, or include_bitext).")
    ctx.progress(0.02, f"{len(train)} training and {len(validation)} validation examples")
    config = LoraTrainConfig(
        rank=params.get("rank", 8), alpha=params.get("alpha", 16), dropout=params.get("dropout", 0.05),
        lr=params.get("lr", 2e-4), batch_size=params.get("batch_size", 8), max_steps=params.get("max_steps", 200),
        epochs=params.get("epochs", 1.0), eval_every=params.get("eval_every", 25), patience=params.get("patience", 3),
        seed=params.get("seed", 0), amp_dtype=device_amp_dtype(), top_layers=params.get("top_layers", 0),
    )
    device = device_get().device
    base_dir = lm_prepare()
    # A fresh float32 copy: the serving model (lm_get) is never touched.
    with MODEL_BUILD_LOCK:
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="sdpa").to(device)
    train_share = 0.85 if data["held_back"] else 0.97

    def on_step(step: int, loss: float, stats: dict) -> None:
        ctx.metrics_log(step, split="train", loss=loss, lr=stats["lr"])
        if step % 5 == 0 or step == stats["total_steps"]:
            ctx.progress(0.02 + train_share * step / stats["total_steps"], f"step {step}/{stats['total_steps']}, loss {loss:.3f}")

    def on_eval(step: int, loss: float) -> None:
        ctx.metrics_log(step, split="validation", loss=loss)

    max_seconds = params.get("max_seconds")  # the training's time budget: it stops there, keeping the best weights
    init_from = None
    if params.get("init_from"):
        from workers.runtime.adapters import adapter_version_resolve

        try:
            start = adapter_version_resolve(params["init_from"])
        except PermanentJobError:
            raise PermanentJobError(f"init_from: no ready LoRA adapter {params['init_from']!r}.") from None
        init_from = Path(settings.GENAI_MODEL_STORE_DIR) / start.artifact_path
    try:
        result = lora_train(
            model, tokenizer, train, validation, config, on_step=on_step, on_eval=on_eval,
            should_stop=lambda: ctx.stop_reason() is not None or (
                bool(max_seconds) and time.monotonic() - started > max_seconds),
            init_from=init_from,
        )
    except ExamplesError as exc:
        raise PermanentJobError(str(exc)) from None
    if ctx.stop_reason() is not None:  # cancelled, or past the job's time limit: nothing registered
        raise PermanentJobError(
            f"Stopped ({ctx.stop_reason()}) after {result.metrics['steps']} steps; no adapter was saved. "
            "Lower max_steps or raise GENAI_JOB_SOFT_TIME_LIMIT_SECONDS on the train worker.",
            code=ctx.stop_reason(),
        )
    name = params.get("name") or f"{params['purpose']}-lora"
    version = model_version_next_number(name=name)
    directory = model_version_artifact_dir(family=FAMILY, name=name, version=version)
    result.model.save_pretrained(str(directory))
    metrics = dict(result.metrics)
    metrics["sources"] = data["sources"]
    (directory / "training.json").write_text(json.dumps({"params": params, "metrics": metrics, "history": result.history}, indent=1, default=str))
    del model, result
    if data["held_back"] and ctx.stop_reason() is None:
        ctx.progress(0.9, f"scoring {len(data['held_back'])} held-back replies, base vs adapter")
        metrics["replies"] = _replies_eval(directory, data["held_back"], label=f"{name}@{version}")
    metrics["seconds"] = round(time.monotonic() - started, 1)
    job_id = getattr(ctx, "job_id", None)
    registered = model_version_register(
        family=FAMILY,
        name=name,
        version=version,
        purpose=params["purpose"],
        artifact_path=directory,
        base_model=Path(base_dir).name,
        config={"lora": metrics.pop("config"), "max_tokens": max_tokens, "seed": params.get("seed", 0),
                "dataset_jsonl": params.get("dataset_jsonl", ""), "include_bitext": params.get("include_bitext"),
                "prompt_format": params.get("prompt_format", ""), "init_from": params.get("init_from", "")},
        metrics=metrics,
        training_job_id=job_id if job_id and job_id != "local" else None,
    )
    before, after = metrics["validation_loss_before"], metrics["validation_loss_after"]
    text = (
        f"LoRA adapter {registered.label} for {params['purpose']}: {metrics['steps']} steps on "
        f"{metrics['train_examples']} examples, validation loss {before} -> {after} "
        f"({metrics['examples_per_second']} examples/s, {metrics['tokens_per_second']} tokens/s)."
    )
    if "replies" in metrics:
        r = metrics["replies"]
        text += (f" Held-back replies ({r['rows']}): service similarity {r['base']['service']['similarity']} (base) -> "
                 f"{r['adapter']['service']['similarity']} (adapter); bare model {r['base']['bare']['similarity']} -> "
                 f"{r['adapter']['bare']['similarity']}.")
    text += " Promote it (POST /api/models/{id}/promote) to make it the default."
    return JobResult(
        candidates=[CandidateResult(text=text, finish_reason="stop",
                                    metadata={"model_version": registered.label, "metrics": metrics})],
        model_version=registered.label,
        usage={"examples": metrics["examples_seen"], "seconds": metrics["seconds"], "device": str(device)},
    )


def _replies_eval(directory: Path, rows: list[dict], *, label: str) -> dict:
    from workers.runtime.adapters import adapter_lm_build
    from workers.runtime.models import lm_get

    base = lm_get()
    adapter = adapter_lm_build(directory=directory, base=base, label=label)
    try:
        return replies_figures(rows, {"base": base, "adapter": adapter})
    finally:
        if adapter.engine is not None:
            adapter.engine.close()
