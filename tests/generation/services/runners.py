"""Runners for test kinds: each fails in one way a real runner can."""

from django.db import OperationalError

from generation.exceptions import PermanentJobError


def boom_run(*, params, ctx):
    raise ValueError("the model exploded")


def bad_input_run(*, params, ctx):
    raise PermanentJobError("the CSV has no 'name' column", code="invalid_input")


def db_blip_run(*, params, ctx):
    raise OperationalError("server closed the connection unexpectedly")


def training_run(*, params, ctx):
    """Like the training runners: logs curve points, streams, stops when told to and raises
    (nothing was saved), or finishes after ``params['steps']`` polls."""
    for step in range(int(params.get("steps", 10**6))):
        ctx.metrics_log(step, loss=1.0 / (step + 1))
        ctx.text_emit({0: f"step {step} "}, tokens=1)
        ctx.text_flush()
        if ctx.stop_reason():
            raise PermanentJobError(f"Stopped ({ctx.stop_reason()}) before the model was saved.", code=ctx.stop_reason())
    from generation.runner import CandidateResult, JobResult

    return JobResult(candidates=[CandidateResult(text="trained", finish_reason="stop")], model_version="test")
