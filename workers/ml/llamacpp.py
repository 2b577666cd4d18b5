"""The engine's decoder on llama.cpp (``GENAI_ENGINE=llamacpp``): the same continuous batching,
sampling and streaming as ``workers.ml.batching.BatchDecoder``, with every forward pass run by
llama.cpp (llama-cpp-python's low-level API) on the model's own GGUF file.

Why: on the CPU, llama.cpp's quantised kernels decode one sequence faster than our int4 PyTorch
step (docs/benchmarks.md, "Generation"), while ours scales better with many rows; which one a
worker serves with is a setting chosen by measurement per machine.

How it maps: one llama.cpp context with a unified KV cache (``GENAI_LLAMACPP_CONTEXT_TOKENS``
cells shared by all sequences) and one sequence id per row. A request is prefilled into a
sequence of its own, in chunks of ``prefill_chunk`` tokens (or several whole prompts in one
``llama_decode``); its ``n`` candidates share the prompt's cells (``llama_memory_seq_cp``: no
copy). A decoding step is one ``llama_decode`` of one token per row; llama.cpp returns each
row's logits and ``RowSampler`` picks the tokens exactly as it does for the transformers decoder
(penalty, temperature, top-k, top-p, the row's seeded generator, grammars), so a request's
params, stop sequences, finish reasons and token counts mean the same on both.

Prefix cache: a prefilled prompt is kept as a sequence of its own (its cells shared, not copied)
up to ``prefix_cache_tokens`` tokens; a later prompt that starts the same way gets those cells
and prefills only the rest. Kept prefixes are given up first when the context runs out of cells.

LoRA adapters are served merged by the transformers decoder (``workers.runtime.adapters``); this
decoder serves a model that has its GGUF, the base model.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from workers.ml.batching import BatchRequest, Row, RowSampler

logger = logging.getLogger(__name__)

PREFIX_SLOTS = 8  # sequence ids reserved for kept prefixes


def available() -> bool:
    """Whether llama-cpp-python is installed (it is a bench/GPU-host extra, built from source)."""
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@dataclass(eq=False)
class _Prefix:
    ids: torch.Tensor  # (length,) the prompt's tokens
    seq: int  # the llama.cpp sequence holding their cells


class LlamaCppDecoder(RowSampler):
    def __init__(self, gguf_path: str, tokenizer, *, eos_ids: set[int], prefill_chunk: int = 256,
                 prefix_cache_tokens: int = 0, threads: int | None = None, max_sequences: int = 16,
                 context_tokens: int = 12_288):
        import llama_cpp as L

        super().__init__(tokenizer, eos_ids=eos_ids, prefill_chunk=prefill_chunk, prefix_cache_tokens=prefix_cache_tokens)
        self.L = L
        _quiet(L)
        L.llama_backend_init()
        self.model = L.llama_model_load_from_file(gguf_path.encode(), L.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf_path}")
        self.vocab_size = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.threads = threads or len(os.sched_getaffinity(0))
        self.context_tokens = context_tokens
        # Rows, prefilling requests (admitted alongside the rows) and kept prefixes each hold one.
        self.max_sequences = 2 * max_sequences + PREFIX_SLOTS
        self.batch_tokens = max(prefill_chunk, max_sequences, 64)
        params = L.llama_context_default_params()
        params.n_ctx = context_tokens
        params.n_batch = params.n_ubatch = self.batch_tokens
        params.n_seq_max = self.max_sequences
        params.n_threads = params.n_threads_batch = self.threads
        params.kv_unified = True  # all sequences share the n_ctx cells: a shared prompt is stored once
        params.no_perf = True
        self.ctx = L.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.memory = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(self.batch_tokens, 0, 1)
        self._tokens = np.ctypeslib.as_array(self.batch.token, shape=(self.batch_tokens,))
        self._positions = np.ctypeslib.as_array(self.batch.pos, shape=(self.batch_tokens,))
        self._wants_logits = np.ctypeslib.as_array(self.batch.logits, shape=(self.batch_tokens,))
        self._free = list(range(self.max_sequences))
        self._seq: dict[Row | BatchRequest, int] = {}  # a row's (or a prefilling request's) sequence
        self._position: dict[Row, int] = {}  # where a row's next token goes
        logger.info("llama.cpp decoder on %s: %d threads, %d KV cells, %s", gguf_path, self.threads, context_tokens,
                    L.llama_print_system_info().decode(errors="replace").strip())

    def __del__(self):
        try:
            self.L.llama_batch_free(self.batch)
            self.L.llama_free(self.ctx)
            self.L.llama_model_free(self.model)
        except Exception:  # noqa: BLE001 - interpreter shutdown: the library may be gone already
            pass

    # --- what the engine reads ---------------------------------------------------------------

    @property
    def cached_tokens(self) -> int:
        """KV cells the rows and prefilling requests hold (a row counts its prompt in full, though
        candidates share it); kept prefixes are not counted: they give way when cells run out."""
        return sum(self._position.values()) + sum(r.prefilled for r in self._seq if isinstance(r, BatchRequest))

    def reset(self) -> None:
        """Forget every row, sequence and kept prefix (after a failed step)."""
        self.L.llama_memory_clear(self.memory, False)
        self.rows, self.prefixes, self._seq, self._position = [], [], {}, {}
        self._free = list(range(self.max_sequences))

    def release(self, request: BatchRequest) -> None:
        if (seq := self._seq.pop(request, None)) is not None:
            self._seq_give(seq)

    def hand_over(self) -> list[Row]:
        """Give up every row (their sequences freed), for another decoder to ``adopt``."""
        rows, self.rows = self.rows, []
        for row in rows:
            self._seq_give(self._seq.pop(row))
            del self._position[row]
        return rows

    # --- sequences and the batch ------------------------------------------------------------

    def _seq_take(self) -> int:
        if not self._free and self.prefixes:
            self._prefix_release(self.prefixes[0])
        if not self._free:
            raise RuntimeError(f"llama.cpp decoder: all {self.max_sequences} sequences in use")
        return self._free.pop()

    def _seq_give(self, seq: int) -> None:
        self.L.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self._free.append(seq)

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, sequence, wants logits) entries; when the
        context has no cells left, kept prefixes are given up and it is tried again."""
        count = len(entries)
        if count > self.batch_tokens:
            raise ValueError(f"{count} tokens in one llama.cpp batch > {self.batch_tokens}")
        tokens, positions, seqs, wants = zip(*entries, strict=True)
        self._tokens[:count] = tokens
        self._positions[:count] = positions
        self._wants_logits[:count] = wants
        for i, seq in enumerate(seqs):
            self.batch.n_seq_id[i] = 1
            self.batch.seq_id[i][0] = seq
        self.batch.n_tokens = count
        while (status := self.L.llama_decode(self.ctx, self.batch)) == 1 and self.prefixes:
            self._prefix_release(self.prefixes[0])  # no room: the kept prefixes' cells go first
        if status != 0:
            raise RuntimeError(f"llama_decode failed ({status}): "
                               f"{'no KV cells left (GENAI_LLAMACPP_CONTEXT_TOKENS)' if status == 1 else 'error'}")

    def _logits(self, index: int) -> torch.Tensor:
        """The logits llama.cpp computed for the batch's ``index``-th token (a copy)."""
        pointer = self.L.llama_get_logits_ith(self.ctx, index)
        return torch.from_numpy(np.ctypeslib.as_array(pointer, shape=(self.vocab_size,)).copy())

    def _logits_all(self, count: int) -> torch.Tensor:
        """(count, vocab) logits of a batch where every token asked for them (a copy)."""
        pointer = self.L.llama_get_logits(self.ctx)
        return torch.from_numpy(np.ctypeslib.as_array(pointer, shape=(count, self.vocab_size)).copy())

    # --- prefill ----------------------------------------------------------------------------

    def prefill_step(self, request: BatchRequest) -> bool:
        """Run the next chunk of the request's prompt. True once it has joined the batch."""
        if request not in self._seq:
            self.prefix_attach(request)
        if request not in self._seq:
            self._seq[request] = self._seq_take()
        seq, start = self._seq[request], request.prefilled
        chunk = request.prompt_ids[start : start + self.prefill_chunk]
        last = start + len(chunk) >= len(request.prompt_ids)
        self._decode([(token, start + i, seq, last and i == len(chunk) - 1) for i, token in enumerate(chunk)])
        request.prefilled += len(chunk)
        if not last:
            return False
        self._join(request, self._logits(len(chunk) - 1))
        return True

    def prefill_many(self, requests: list[BatchRequest]) -> None:
        """Prefill the whole prompts of ``requests`` (none started) in one ``llama_decode``, each
        in its own sequence, then join each to the batch."""
        entries, last_index = [], []
        for request in requests:
            seq = self._seq[request] = self._seq_take()
            ids = request.prompt_ids
            entries.extend((token, i, seq, i == len(ids) - 1) for i, token in enumerate(ids))
            last_index.append(len(entries) - 1)
        self._decode(entries)
        logits = [self._logits(i) for i in last_index]  # read all before a join's seq_cp
        for request, row_logits in zip(requests, logits, strict=True):
            request.prefilled = len(request.prompt_ids)
            self._join(request, row_logits)

    def prefix_attach(self, request: BatchRequest, *, min_tokens: int = 8) -> bool:
        """Start a request not yet prefilled from the longest kept prefix its prompt shares: its
        sequence gets that prefix's cells (shared) and only the rest is prefilled."""
        if request.prefilled or request in self._seq:
            return False
        best, length = self._prefix_find(request.prompt_ids, min_tokens=min_tokens)
        if best is None:
            return False
        seq = self._seq[request] = self._seq_take()
        self.L.llama_memory_seq_cp(self.memory, best.seq, seq, 0, length)
        request.prefilled = length
        self.prefix_hits += length
        return True

    def _prefix_keep(self, request: BatchRequest) -> None:
        if not self._prefix_wanted(request.prompt_ids) or not self._free:
            return
        if len(self.prefixes) >= PREFIX_SLOTS:
            self._prefix_release(self.prefixes[0])
        seq = self._seq_take()
        self.L.llama_memory_seq_cp(self.memory, self._seq[request], seq, -1, -1)
        self.prefixes.append(_Prefix(ids=torch.tensor(request.prompt_ids), seq=seq))
        self._prefix_trim()

    def _prefix_release(self, entry: _Prefix) -> None:
        super()._prefix_release(entry)
        self._seq_give(entry.seq)

    def _join(self, request: BatchRequest, logits: torch.Tensor) -> None:
        """The request's rows join the batch: the first keeps the prompt's sequence, the others
        get sequences sharing its cells."""
        self._prefix_keep(request)
        first = self._seq.pop(request)
        self._rows_start(request, logits)
        for row in request.rows:
            seq = first if row.index == 0 else self._seq_take()
            if seq != first:
                self.L.llama_memory_seq_cp(self.memory, first, seq, -1, -1)
            self._seq[row], self._position[row] = seq, len(request.prompt_ids)
        self.rows.extend(request.rows)
        self._evict()

    # --- decode -----------------------------------------------------------------------------

    def _forward(self) -> torch.Tensor:
        """One ``llama_decode`` of every row's last token; the rows' logits."""
        self._decode([(row.last_token, self._position[row], self._seq[row], True) for row in self.rows])
        for row in self.rows:
            self._position[row] += 1
        return self._logits_all(len(self.rows))

    def _evict(self) -> None:
        """Finished rows leave: their sequences' cells are freed (shared prompt cells stay while
        another sequence holds them)."""
        finished = set(self._finished_take())
        if not finished:
            return
        for i in finished:
            row = self.rows[i]
            self._seq_give(self._seq.pop(row))
            del self._position[row]
        self.rows = [row for i, row in enumerate(self.rows) if i not in finished]


class HandoffDecoder:
    """``GENAI_ENGINE=llamacpp``: llama.cpp decodes while the engine has at most ``fast_rows``
    rows (by default a lone request), the transformers decoder as soon as it has more. Measured
    on 2 cores (docs/benchmarks.md, "Generation"): llama.cpp's step is the faster one for one
    row (about 11 vs 15 ms), equal for two and slower from three on (89 vs 74 ms at 16), and its
    prefill is slower (about 240 vs 150 ms for 64 prompt tokens). So a request that arrives at an
    idle engine goes to llama.cpp; one that arrives with others (running or queued) goes to transformers,
    and llama.cpp's rows move over there at the next step (``BatchDecoder.adopt``: their tokens so
    far prefilled again, the prompt from the prefix cache), so that a busy engine runs one batch;
    llama.cpp takes requests again once the engine is idle. ``fast_rows`` >= the engine's row
    cap serves everything with llama.cpp."""

    def __init__(self, fast: LlamaCppDecoder, batch: RowSampler, *, fast_rows: int):
        self.fast, self.batch, self.fast_rows = fast, batch, fast_rows
        self.prefill_chunk = batch.prefill_chunk
        self.queued_rows = 0  # set by the engine before each iteration
        self._route: dict[BatchRequest, RowSampler] = {}  # requests routed, not joined yet
        self.handoffs = 0  # rows moved from llama.cpp to transformers

    @property
    def rows(self) -> list[Row]:
        return [*self.fast.rows, *self.batch.rows]

    @property
    def cached_tokens(self) -> int:
        return self.fast.cached_tokens + self.batch.cached_tokens

    @property
    def prefix_hits(self) -> int:
        return self.fast.prefix_hits + self.batch.prefix_hits

    def _decoder(self, request: BatchRequest) -> RowSampler:
        """Where ``request`` runs, decided when the engine first hands it over: llama.cpp if the
        rows running and the rows of every request not joined yet (``queued_rows``, this one's
        included) are at most ``fast_rows`` and transformers has none, else transformers."""
        if (decoder := self._route.get(request)) is None:
            batch_busy = bool(self.batch.rows) or self.batch in self._route.values()
            queued = max(self.queued_rows, sum(r.params.n for r in self._route) + request.params.n)
            decoder = self.fast if not batch_busy and len(self.fast.rows) + queued <= self.fast_rows else self.batch
            self._route[request] = decoder
        return decoder

    def prefix_attach(self, request: BatchRequest, **kwargs) -> bool:
        return self._decoder(request).prefix_attach(request, **kwargs)

    def prefill_step(self, request: BatchRequest) -> bool:
        joined = self._decoder(request).prefill_step(request)
        if joined:
            del self._route[request]
        return joined

    def prefill_many(self, requests: list[BatchRequest]) -> None:
        for decoder in (self.fast, self.batch):
            if mine := [r for r in requests if self._decoder(r) is decoder]:
                decoder.prefill_many(mine)
        for request in requests:
            del self._route[request]

    def release(self, request: BatchRequest) -> None:
        if (decoder := self._route.pop(request, None)) is not None:
            decoder.release(request)

    def decode_step(self) -> None:
        if self.fast.rows and self.batch.rows:  # more than a lone request: one batch, on transformers
            rows = self.fast.hand_over()
            self.batch.adopt(rows)
            self.handoffs += len(rows)
        for decoder in (self.fast, self.batch):
            if decoder.rows:
                decoder.decode_step()

    def reset(self) -> None:
        self._route = {}
        self.fast.reset()
        self.batch.reset()


def _quiet(L) -> None:
    """llama.cpp's load-time chatter (hundreds of lines per model) goes to this module's logger
    at DEBUG; warnings and errors stay warnings and errors."""
    global _log_callback
    if _log_callback is not None:
        return

    @ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
    def callback(level, text, _user):
        message = text.decode(errors="replace").rstrip()
        if message:
            logger.log(logging.ERROR if level == 4 else logging.WARNING if level == 3 else logging.DEBUG, "%s", message)

    _log_callback = callback  # kept alive: llama.cpp holds the pointer
    L.llama_log_set(callback, ctypes.c_void_p(0))


_log_callback = None
