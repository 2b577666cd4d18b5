"""Runner of the ``generate`` kind: the process's LM (or a LoRA adapter) turns a prompt or chat
messages into ``n`` candidates, on the engine, streamed."""

from __future__ import annotations

import time

from generation.lm import chat_input_ids
from generation.runner import CandidateResult, JobResult, RunnerContext
from generation.structured import response_format_grammar
from workers.ml.decoding import SamplingParams
from workers.runtime.completions import completions_run
from workers.runtime.models import engine_name


def generate_run(*, params: dict, ctx: RunnerContext) -> JobResult:
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
        grammar=response_format_grammar(params.get("response_format")),
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
            "engine": engine_name(lm),
        },
    )
