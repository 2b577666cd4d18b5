"""One lock for building models in a process whose threads run several jobs at once (a trainer
runs two, a worker up to 16). transformers' ``from_pretrained`` and accelerate's
``init_empty_weights`` put new parameters on the meta device by patching ``torch.nn.Module`` for the
whole process, not for their thread: a module another thread builds meanwhile gets meta parameters.
Seen on a fresh ``make run``: the product VAE's training failed with "Cannot copy out of meta
tensor" while the sentiment training beside it loaded all-mpnet-base-v2. Whatever builds or loads
a model holds this lock (re-entrant: a loader may call another); training and inference run
outside it."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

MODEL_BUILD_LOCK = threading.RLock()

F = TypeVar("F", bound=Callable)


def model_building(function: F) -> F:
    """Run ``function`` (a model loader or builder) holding ``MODEL_BUILD_LOCK``."""

    @functools.wraps(function)
    def locked(*args, **kwargs):
        with MODEL_BUILD_LOCK:
            return function(*args, **kwargs)

    return locked  # type: ignore[return-value]
