"""Runner of the ``echo`` kind: no model, for benchmarks and fault-tolerance tests."""

import time

from generation.runner import CandidateResult, JobResult, RunnerContext


def echo_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    delay = params.get("delay_seconds", 0.0)
    deadline = time.monotonic() + delay
    while delay and (left := deadline - time.monotonic()) > 0:
        if ctx.stop_reason():
            break
        time.sleep(min(left, 0.5))
        ctx.progress(1.0 - max(deadline - time.monotonic(), 0.0) / delay, "waiting")
    return JobResult(candidates=[CandidateResult(text=params["text"], finish_reason="stop")], model_version="echo")
