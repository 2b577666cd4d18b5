"""Runner of the ``generate`` kind: the process's LM turns a job's params into candidates."""

from __future__ import annotations

import time

from django.conf import settings

from generation.kinds import CandidateResult, JobResult
from generation.services.jobs import JobContext
from workers.ml.decoding import Completion, SamplingParams
from workers.ml.lm import generate
from workers.runtime.models import LoadedLM, chat_input_ids, lm_get


def generate_run(*, params: dict, ctx: JobContext) -> JobResult:
    from workers.runtime.adapters import lm_for

    lm = lm_for(params.get("model"))  # the base LM, or a LoRA adapter merged into a copy of it
    ids = chat_input_ids(lm.tokenizer, prompt=params.get("prompt"), messages=params.get("messages"))
    sampling = SamplingParams(
        max_new_tokens=params["max_new_tokens"],
        temperature=params["temperature"],
        top_p=params["top_p"],
        top_k=params["top_k"],
        repetition_penalty=params["repetition_penalty"],
        stop=tuple(params.get("stop") or ()),
        seed=params.get("seed"),
        n=params["n"],
    )
    started = time.monotonic()
    completions = completions_run(lm, ids, sampling, ctx)
    seconds = time.monotonic() - started
    stop_reason = ctx.stop_reason()
    generated = sum(c.completion_tokens for c in completions)
    return JobResult(
        candidates=[
            CandidateResult(
                text=c.text,
                finish_reason=(stop_reason if c.finish_reason == "cancelled" and stop_reason else c.finish_reason),
                score=c.mean_logprob,
                prompt_tokens=len(ids),
                completion_tokens=c.completion_tokens,
                metadata={"seed": sampling.seed},
            )
            for c in completions
        ],
        model_version=lm.version,
        usage={
            "prompt_tokens": len(ids),
            "completion_tokens": generated,
            "generation_seconds": round(seconds, 4),
            "tokens_per_second": round(generated / seconds, 2) if seconds > 0 else None,
            "device": lm.device,
            "dtype": lm.dtype,
            "weights": lm.weights,
            "engine": settings.GENAI_ENGINE,
        },
    )


def completions_run(lm: LoadedLM, ids: list[int], sampling: SamplingParams, ctx: JobContext) -> list[Completion]:
    """The process's LM completes ``ids``: on its engine (GENAI_ENGINE=batched) or alone, streaming
    text to ``ctx`` and stopping when ``ctx`` says so. Shared by the kinds that generate text."""
    if lm.engine is not None:
        return _run_on_engine(lm, ids, sampling, ctx)
    return _run_alone(lm, ids, sampling, ctx)


def _run_on_engine(lm: LoadedLM, ids: list[int], sampling: SamplingParams, ctx: JobContext) -> list[Completion]:
    """Submit to the process's engine; stream its text to the job from this (task) thread: the
    first text as soon as it exists (time to first token), the rest every flush interval."""
    handle = lm.engine.submit(ids, sampling)
    streamed = False
    while True:
        done = handle.wait(settings.GENAI_STREAM_FLUSH_SECONDS, for_text=not streamed)
        deltas, tokens = handle.drain()
        if deltas or tokens:
            streamed = True
            ctx.text_emit(deltas, tokens=tokens)
        if done:
            return handle.result()
        if ctx.stop_reason() is not None:
            handle.cancel()


def _run_alone(lm: LoadedLM, ids: list[int], sampling: SamplingParams, ctx: JobContext) -> list[Completion]:
    import torch

    input_ids = torch.tensor([ids], dtype=torch.long, device=lm.model.device)
    with lm.lock:
        return generate(
            lm.model,
            lm.tokenizer,
            input_ids,
            sampling,
            on_text=lambda deltas, tokens: ctx.text_emit(deltas, tokens=tokens),
            should_stop=lambda: ctx.stop_reason() is not None,
        )
