"""The runner contract: what a job kind's runner takes and returns.

A runner is a plain function ``runner(*, params, ctx) -> JobResult``: ``params`` are the job's
validated params, ``ctx`` a :class:`RunnerContext` through which it reports progress, streams
text, logs training curves and learns when it must stop. The worker's registry
(``workers.runners.RUNNERS``) maps each kind to its runner; ``generation.services.jobs`` calls it
with the database-backed context (``JobContext``) and stores the :class:`JobResult`.

Outside a job (management commands, evaluation, batch drafting) runners get a
:class:`NullContext`; runners that run a sub-request wrap their context in
:class:`SilentContext` (nothing streamed) or :class:`OffsetContext` (candidate indices shifted).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class CandidateResult:
    text: str
    finish_reason: str
    score: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    candidates: list[CandidateResult]
    model_version: str = ""
    usage: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class RunnerContext(Protocol):
    """What a runner may ask of the job it runs."""

    job_id: str
    owner_id: int | None
    kind: str
    deadline: float  # time.monotonic() by which the runner must have returned

    def progress(self, fraction: float, message: str = "") -> None: ...

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        """Stream text: ``deltas`` maps a candidate index to its new text."""

    def text_flush(self) -> None: ...

    def stop_reason(self) -> str | None:
        """``cancelled``, ``timeout`` or ``shutdown`` once the runner must stop, else None."""

    def metrics_log(self, step: int, split: str = "train", **values: float) -> None:
        """A point of the job's training curves."""


Runner = Callable[..., JobResult]  # runner(*, params: dict, ctx: RunnerContext) -> JobResult


class NullContext:
    """A context for runs outside a job (commands, evaluation, batch drafting): nothing is
    streamed and it never stops. With ``write`` (a command's stderr), progress messages and
    validation curve points are printed; every curve point is kept in ``points``."""

    job_id = "local"
    owner_id: int | None = None
    kind = "local"
    deadline = math.inf

    def __init__(self, write: Callable[[str], Any] | None = None):
        self.write = write
        self.points: list[tuple[int, str, dict]] = []

    def progress(self, fraction: float, message: str = "") -> None:
        if self.write and message:
            self.write(f"[{fraction:5.1%}] {message}")

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        pass

    def text_flush(self) -> None:
        pass

    def stop_reason(self) -> str | None:
        return None

    def metrics_log(self, step: int, split: str = "train", **values: float) -> None:
        self.points.append((step, split, values))
        if self.write and split != "train":  # validation points are few: show them
            self.write(f"step {step} {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))


class _Wrapped:
    """Delegates everything to the wrapped context; subclasses change what they must."""

    def __init__(self, ctx: RunnerContext):
        self.ctx = ctx

    def __getattr__(self, name: str) -> Any:  # job_id, owner_id, kind, deadline
        return getattr(self.ctx, name)

    def progress(self, fraction: float, message: str = "") -> None:
        self.ctx.progress(fraction, message)

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        self.ctx.text_emit(deltas, tokens=tokens)

    def text_flush(self) -> None:
        self.ctx.text_flush()

    def stop_reason(self) -> str | None:
        return self.ctx.stop_reason()

    def metrics_log(self, step: int, split: str = "train", **values: float) -> None:
        self.ctx.metrics_log(step, split, **values)


class SilentContext(_Wrapped):
    """Streams nothing (text that a checker may still reject is shown once checked, not while it
    is generated); the job can still be stopped."""

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        pass


class OffsetContext(_Wrapped):
    """Streamed candidate indices start at ``offset`` (a job's second request to the engine)."""

    def __init__(self, ctx: RunnerContext, offset: int):
        super().__init__(ctx)
        self.offset = offset

    def text_emit(self, deltas: dict[int, str], *, tokens: int = 0) -> None:
        self.ctx.text_emit({self.offset + i: t for i, t in deltas.items()}, tokens=tokens)
