"""The per-process cache of loaded models (LoRA-merged LMs, VAE/GAN pairs, intent heads): least
recently used evicted past a size, one load per key at a time (threads asking for a model that is
loading wait for it instead of loading it again)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

V = TypeVar("V")


class ModelCache(Generic[V]):
    def __init__(self, *, name: str, size: Callable[[], int], on_evict: Callable[[V], None] | None = None):
        self.name, self.size, self.on_evict = name, size, on_evict
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The value of ``key``, calling ``load()`` once when it is not cached."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            value = load()
            with self._lock:
                self._items[key] = value
                self._loading.pop(key, None)
                evicted = []
                while len(self._items) > max(self.size(), 1):
                    evicted.append(self._items.popitem(last=False))
            for evicted_key, evicted_value in evicted:
                logger.info("%s %s evicted from the cache", self.name, evicted_key)
                if self.on_evict:
                    self.on_evict(evicted_value)
            return value

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        if self.on_evict:
            for value in items:
                self.on_evict(value)
