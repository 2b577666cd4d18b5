"""The per-process model cache: least recently used evicted, one load per key."""

import threading
import time

from workers.runtime.cache import ModelCache


def test_the_least_recently_used_model_is_evicted_and_released():
    released = []
    cache = ModelCache(name="test", size=lambda: 2, on_evict=released.append)
    cache.get("a", lambda: "model-a")
    cache.get("b", lambda: "model-b")
    cache.get("a", lambda: "reloaded-a")  # a hit: "a" is now the most recent
    cache.get("c", lambda: "model-c")
    assert cache.keys() == ["a", "c"] and released == ["model-b"]
    assert cache.get("a", lambda: "reloaded-a") == "model-a"


def test_threads_asking_for_a_loading_model_wait_for_one_load():
    loads = []

    def load():
        loads.append(1)
        time.sleep(0.05)
        return object()

    cache = ModelCache(name="test", size=lambda: 4)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", load))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len({id(r) for r in results}) == 1
