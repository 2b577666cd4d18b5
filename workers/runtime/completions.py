"""Runner of the ``generate`` kind: the process's LM turns a job's params into candidates."""

from __future__ import annotations

from django.conf import settings

from generation.runner import RunnerContext
from workers.ml.decoding import Completion, SamplingParams
from workers.ml.lm import generate
from workers.runtime.models import LoadedLM


def completions_run(lm: LoadedLM, ids: list[int], sampling: SamplingParams, ctx: RunnerContext) -> list[Completion]:
    """The process's LM completes ``ids``: on its engine (GENAI_ENGINE=batched) or alone, streaming
    text to ``ctx`` and stopping when ``ctx`` says so. Shared by the kinds that generate text."""
    if lm.engine is not None:
        return _run_on_engine(lm, ids, sampling, ctx)
    return _run_alone(lm, ids, sampling, ctx)


def _run_on_engine(lm: LoadedLM, ids: list[int], sampling: SamplingParams, ctx: RunnerContext) -> list[Completion]:
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


def _run_alone(lm: LoadedLM, ids: list[int], sampling: SamplingParams, ctx: RunnerContext) -> list[Completion]:
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
