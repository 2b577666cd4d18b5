"""The job-kind registry.

A kind declares its params serializer, the queue its jobs run on and the roles that may create
it. The pipeline (services, API) only talks to this registry: adding a kind is adding a module to
this package and its runner to the worker's registry (``workers.runners.RUNNERS``, checked by
``tests/workers/runners/test_registry.py``). Kinds never import ``workers``, so the web process
never loads torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from django.conf import settings
from rest_framework import serializers


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    params_serializer: type[serializers.Serializer]
    queue: str
    roles: frozenset[str]
    # Free-text params masked for personal data before the job is stored (generation.privacy.params_mask):
    # "key", "list[]", "list[].key", "mapping{}" (every value).
    masked_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.queue not in settings.GENAI_QUEUES:
            raise ValueError(f"Kind {self.name!r}: queue must be one of {settings.GENAI_QUEUES}, not {self.queue!r}")


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
