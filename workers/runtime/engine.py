"""The per-process generation engine: one thread owns the model and serves every job of the
worker's thread pool with continuous batching (``workers.ml.batching``).

Task threads ``submit`` a request and get a handle; they drain streamed text from it (and write
it to the database themselves, off the engine's thread), and cancel it when their job is
cancelled or times out. Admission: at most ``max_rows`` candidate rows decode at once and the
padded KV cache stays under ``max_cached_tokens``; other requests wait in the engine's queue.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from workers.ml.batching import BatchRequest, RowSampler
from workers.ml.decoding import Completion, SamplingParams

logger = logging.getLogger(__name__)


class GenerationHandle:
    """A task thread's view of its request in the engine."""

    def __init__(self, request: BatchRequest):
        self.request = request
        self._lock = threading.Lock()
        self._deltas: dict[int, str] = {}
        self._tokens = 0
        self._done = threading.Event()
        self._news = threading.Event()  # text waiting to be drained, or done
        self._result: list[Completion] | None = None
        self._error: BaseException | None = None

    # engine thread
    def _publish(self, deltas: dict[int, str], tokens: int) -> None:
        with self._lock:
            for index, text in deltas.items():
                self._deltas[index] = self._deltas.get(index, "") + text
            self._tokens += tokens
            self._news.set()

    def _finish(self, result: list[Completion] | None, error: BaseException | None = None) -> None:
        self._result, self._error = result, error
        self._done.set()
        self._news.set()

    # task thread
    def drain(self) -> tuple[dict[int, str], int]:
        with self._lock:
            deltas, tokens = self._deltas, self._tokens
            self._deltas, self._tokens = {}, 0
            if not self._done.is_set():
                self._news.clear()
        return deltas, tokens

    def wait(self, timeout: float, *, for_text: bool = False) -> bool:
        """Block until the request is done (True) or ``timeout`` passed; with ``for_text`` also
        return as soon as streamed text is waiting (a task thread wakes for the first token
        instead of at its next flush)."""
        if for_text:
            self._news.wait(timeout)
            return self._done.is_set()
        return self._done.wait(timeout)

    def cancel(self) -> None:
        self.request.cancelled = True

    def result(self) -> list[Completion]:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result


class Engine:
    """``decoder``: a ``workers.ml.batching.RowSampler`` decoder (``BatchDecoder`` on transformers,
    ``workers.ml.llamacpp.LlamaCppDecoder`` on llama.cpp); the engine schedules, the decoder computes."""

    def __init__(self, decoder: RowSampler, *, max_rows: int, max_cached_tokens: int, on_step=None,
                 name: str = "batched"):
        self.decoder = decoder
        self.name = name  # what a job's usage reports: batched, llamacpp
        self.max_rows = max_rows
        self.max_cached_tokens = max_cached_tokens
        self._waiting: collections.deque[GenerationHandle] = collections.deque()
        self._prefilling: collections.deque[GenerationHandle] = collections.deque()
        self._running: list[GenerationHandle] = []
        self._on_step = on_step  # called with (seconds, rows, waiting) after every iteration
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        with self._wake:
            self._thread_start()

    def _thread_start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="generation-engine", daemon=True)
        self._thread.start()

    def submit(self, prompt_ids: list[int], params: SamplingParams) -> GenerationHandle:
        handle = GenerationHandle(BatchRequest(prompt_ids=list(prompt_ids), params=params))
        with self._wake:
            self._waiting.append(handle)
            if self._thread is None:  # closed and gone idle: serve this late request, then stop again
                self._thread_start()
            self._wake.notify()
        return handle

    def close(self) -> None:
        """Let the engine's thread end once its requests are done (an evicted adapter's engine);
        the model is then freed with the engine. A request submitted later is still served."""
        with self._wake:
            self._closing = True
            self._wake.notify()

    def stats(self) -> dict[str, int]:
        return {
            "waiting": len(self._waiting),
            "prefilling": len(self._prefilling),
            "running": len(self._running),
            "rows": len(self.decoder.rows),
            "cached_tokens": self.decoder.cached_tokens,
            "prefix_hit_tokens": self.decoder.prefix_hits,
        }

    # --- engine thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        from workers.runtime.device import torch_threads_engine

        torch_threads_engine()  # the process's one multi-threaded torch user, where it isolates it
        while True:
            with self._wake:
                while not (self._waiting or self._prefilling or self._running):
                    if self._closing:
                        self._thread = None
                        return
                    self._wake.wait()
                self._admit()
                self.decoder.queued_rows = sum(h.request.params.n for h in (*self._waiting, *self._prefilling))
            try:
                started = time.perf_counter()
                self._step()
                if self._on_step is not None:
                    self._on_step(time.perf_counter() - started, len(self.decoder.rows), len(self._waiting))
            except Exception as exc:  # noqa: BLE001 - fail the batch, keep the engine alive
                logger.exception("generation engine step failed; failing its %d requests", len(self._running))
                for handle in [*self._running, *self._prefilling]:
                    handle._finish(None, exc)
                self._running, self._prefilling = [], collections.deque()
                self.decoder.reset()

    def _admit(self) -> None:
        """Move waiting requests to prefill while rows and cache budget allow (FIFO)."""
        rows = len(self.decoder.rows) + sum(h.request.params.n for h in self._prefilling)
        while self._waiting:
            handle = self._waiting[0]
            request = handle.request
            if request.cancelled:
                self._waiting.popleft()
                handle._finish([])
                continue
            busy = rows > 0
            tokens = self.decoder.cached_tokens + request.params.n * (len(request.prompt_ids) + request.params.max_new_tokens)
            if busy and (rows + request.params.n > self.max_rows or tokens > self.max_cached_tokens):
                return
            self._waiting.popleft()
            self._prefilling.append(handle)
            rows += request.params.n

    def _joiners_together(self, budget: int) -> list[GenerationHandle]:
        """The leading requests of the prefill queue that one pass can prefill together: not
        started, not cancelled, at most ``budget`` padded tokens in all."""
        together, width = [], 0
        for handle in self._prefilling:
            request = handle.request
            if request.cancelled or request.prefilled or request.cache is not None:
                break
            width = max(width, len(request.prompt_ids))
            if width * (len(together) + 1) > budget:
                break
            together.append(handle)
        return together

    def _step(self) -> None:
        # Prefill joiners, at most ``prefill_chunk`` prompt tokens in all (the first joiner's
        # chunk always runs): one chunk of a long prompt, several short prompts in one pass, or
        # one after another the joiners whose prompts start like one prefilled before (they
        # start from that prefix's cache and prefill only the rest). Then one decoding step for
        # everyone.
        budget = full = self.decoder.prefill_chunk
        while self._prefilling and budget > 0:
            handle = self._prefilling[0]
            request = handle.request
            if request.cancelled:
                self._prefilling.popleft()
                self.decoder.release(request)
                handle._finish([])
                continue
            self.decoder.prefix_attach(request)
            together = self._joiners_together(budget) if len(self._prefilling) > 1 else []
            if len(together) > 1:
                self.decoder.prefill_many([h.request for h in together])
                for h in together:
                    self._prefilling.popleft()
                    self._running.append(h)
                budget -= len(together) * max(len(h.request.prompt_ids) for h in together)
                continue
            cost = min(len(request.prompt_ids) - request.prefilled, full)
            if cost > budget and budget < full:
                break
            budget -= cost
            if not self.decoder.prefill_step(request):
                break  # a long prompt: its next chunk at the next step
            self._prefilling.popleft()
            self._running.append(handle)
        self._publish()  # a joiner's first token (picked from its prefill) goes out before the step
        if self.decoder.rows:
            self.decoder.decode_step()
        self._publish()

    def _publish(self) -> None:
        """Hand new text to the task threads; finish the requests that are done."""
        still = []
        for handle in self._running:
            request = handle.request
            if request.deltas or request.new_tokens:
                handle._publish(request.deltas, request.new_tokens)
                request.deltas, request.new_tokens = {}, 0
            if request.finished:
                handle._finish(request.completions())
            else:
                still.append(handle)
        self._running = still
