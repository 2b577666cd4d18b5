"""The job-kind registry.

A kind declares its params serializer, the queue its jobs run on, the roles that may create it and
the dotted path of the function that runs one job on a worker. The pipeline (services, tasks, API)
only talks to this registry: adding a kind is adding a module to this package.

The runner is named by a dotted path and imported only on the worker, so the web process never
loads torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

if TYPE_CHECKING:
    from generation.services.jobs import JobContext

QUEUES = ("gpu", "cpu", "train")


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


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    params_serializer: type[serializers.Serializer]
    queue: str
    runner: str  # "package.module.function", called as runner(params=..., ctx=...) -> JobResult
    roles: frozenset[str]

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"Kind {self.name!r}: queue must be one of {QUEUES}, not {self.queue!r}")

    def runner_load(self) -> Callable[..., JobResult]:
        module_name, _, func_name = self.runner.rpartition(".")
        return getattr(importlib.import_module(module_name), func_name)


_REGISTRY: dict[str, JobKind] = {}


def kind_register(kind: JobKind) -> JobKind:
    existing = _REGISTRY.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"Job kind {kind.name!r} is registered twice")
    _REGISTRY[kind.name] = kind
    return kind


def kind_get(name: str) -> JobKind | None:
    return _REGISTRY.get(name)


def kinds_all() -> list[JobKind]:
    return sorted(_REGISTRY.values(), key=lambda k: k.name)


def kinds_autodiscover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
