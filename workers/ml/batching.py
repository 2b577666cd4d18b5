"""Continuous batching for a transformers causal LM: every active candidate of every request
advances by one token per forward pass; requests join at step boundaries and leave the moment
they finish.

How sequences of different lengths share one batch: the KV cache (``KVCache``) holds one row
per candidate, left-padded to the longest row; the 2-D attention mask marks the padding and
explicit position ids keep each row's positions its own, so a row computes what it would alone
(up to float summation order). Finished rows leave the cache at once (the last row moves into
the slot, so rows change places; ``rows`` and ``mask`` follow), and leading columns that are
padding in every remaining row are cut, so the live cache never grows past what the active rows
need. Joins and leaves copy only the rows that change: the cache keeps spare row slots and
columns, and is copied whole only when it runs out of them (see ``KVCache``).

A joining request is prefilled alone (batch of one, no padding), in chunks of ``prefill_chunk``
tokens with one decoding step of the running batch between chunks, so a long prompt does not
stall the others; its cache is then written into the batch once for each of its ``n``
candidates.
Several short prompts that arrive together are prefilled in one forward pass instead
(``prefill_many``: left-padded, at most ``prefill_chunk`` padded tokens in all), each row's cache
then cut to its own prompt and joined as above, so a burst of requests waits for one pass rather
than one pass and one decoding step each.

Decoding steps run ``workers.ml.llama_step.LlamaStep`` where the model is a Llama (transformers'
forward otherwise) on a preallocated cache (``KVCache``), and every row's next token is picked in
one set of batched operations (repetition penalty, temperature, top-k, top-p, log-prob); only the
draw itself stays per row, with the row's own generator, so a seed means what it did.

Prefix cache: the KV of each prefilled prompt is kept (up to ``prefix_cache_tokens`` tokens in
all, least recently used dropped); a prompt that starts with the same tokens as a kept one (the
chat template and system prompt, a reply's sources) reuses that part and prefills only the rest.
The keys and values of a position depend only on the tokens up to it, so the result is what a
full prefill computes (up to float summation order).

Pure PyTorch/transformers: no Django, no threads (``workers.runtime.engine`` drives it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from workers.ml.decoding import Completion, SamplingParams, TextTracker, apply_repetition_penalty, sample_token
from workers.ml.grammar import GrammarMatcher, grammar_tokenizer
from workers.ml.llama_step import KVCache, LlamaStep


@dataclass(eq=False)
class Row:
    """One candidate of a request: a row of the batch."""

    request: BatchRequest
    index: int
    tracker: TextTracker
    generator: torch.Generator | None
    seen: list[int]
    seen_mask: torch.Tensor | None = None  # (vocab,) bool: ``seen`` as a mask (rows with a penalty)
    last_token: int = -1
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None
    grammar: GrammarMatcher | None = None  # the request's response format, this row's state in it


@dataclass(eq=False)
class BatchRequest:
    prompt_ids: list[int]
    params: SamplingParams
    rows: list[Row] = field(default_factory=list)
    prefilled: int = 0
    cache: DynamicCache | None = None
    cancelled: bool = False
    # Filled by the decoder after each step, emptied by its driver.
    deltas: dict[int, str] = field(default_factory=dict)
    new_tokens: int = 0

    @property
    def finished(self) -> bool:
        return bool(self.rows) and all(r.finish_reason is not None for r in self.rows)

    def completions(self) -> list[Completion]:
        return [
            Completion(
                text=r.tracker.text,
                finish_reason=r.finish_reason or "cancelled",
                completion_tokens=len(r.tracker.tokens),
                mean_logprob=(sum(r.logprobs) / len(r.logprobs)) if r.logprobs else None,
            )
            for r in self.rows
        ]


def _pad_left(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return F.pad(tensor, pad)


@dataclass(eq=False)
class _Prefix:
    ids: torch.Tensor  # (length,) the prompt's tokens
    keys: torch.Tensor  # (layers, 1, kv heads, length, head dim)
    values: torch.Tensor


class RowSampler:
    """What every decoder of the engine shares, whatever computes its logits: the rows of the
    batch, picking each row's next token (batched where it can), text, stop sequences, finish
    reasons and the end of finished rows. A decoder (``BatchDecoder`` here, on transformers;
    ``workers.ml.llamacpp.LlamaCppDecoder``, on llama.cpp) supplies the logits and its cache, and
    offers the engine ``prefill_step``, ``prefill_many``, ``prefix_attach``, ``decode_step``,
    ``release``, ``reset``, ``rows``, ``cached_tokens`` and ``prefix_hits``."""

    def __init__(self, tokenizer, *, eos_ids: set[int], prefill_chunk: int, prefix_cache_tokens: int):
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.prefill_chunk = prefill_chunk
        self.prefix_cache_tokens = prefix_cache_tokens
        self.rows: list[Row] = []
        self.prefixes: list = []  # kept prompt prefixes, the decoder's kind, most recently used last
        self.prefix_hits = 0  # prompt tokens not prefilled thanks to the prefix cache
        # Rows of the requests waiting or prefilling, not joined yet: the engine sets it before
        # each of its iterations (a decoder that routes requests, HandoffDecoder, reads it).
        self.queued_rows = 0

    def _rows_start(self, request: BatchRequest, logits: torch.Tensor) -> None:
        """The request's ``n`` candidate rows, each given its first token from the prompt's
        last ``logits`` (they join ``self.rows`` when the decoder has placed their cache)."""
        params = request.params
        for index in range(params.n):
            generator = None
            if params.seed is not None and params.temperature > 0:
                generator = torch.Generator().manual_seed(params.seed + index)
            row = Row(
                request=request,
                index=index,
                tracker=TextTracker(self.tokenizer, params.stop),
                generator=generator,
                seen=list(request.prompt_ids) if params.penalise_prompt else [],
                seen_mask=self._seen_mask(request.prompt_ids if params.penalise_prompt else [], logits, params),
                grammar=(GrammarMatcher(grammar_tokenizer(self.tokenizer, self.eos_ids), params.grammar)
                         if params.grammar else None),
            )
            request.rows.append(row)
        self._advance_rows(request.rows, logits.unsqueeze(0).expand(params.n, -1))

    def release(self, request: BatchRequest) -> None:
        """Forget a request the engine dropped before it joined (cancelled while prefilling)."""

    def _cancelled_mark(self) -> None:
        for row in self.rows:
            if row.request.cancelled and row.finish_reason is None:
                row.finish_reason = "cancelled"

    @torch.inference_mode()
    def decode_step(self) -> None:
        """One forward pass for every active row (``_forward``: each row's last token in, the
        rows' logits out), then sampling, text and finishing per row."""
        self._cancelled_mark()
        self._evict()
        if not self.rows:
            return
        self._advance_rows(self.rows, self._forward())
        self._evict()

    def _forward(self) -> torch.Tensor:
        raise NotImplementedError

    def _evict(self) -> None:
        raise NotImplementedError

    def _finished_take(self) -> list[int]:
        """Indices in ``self.rows`` of the finished rows, their held-back text handed out."""
        finished = [i for i, r in enumerate(self.rows) if r.finish_reason is not None]
        for i in finished:
            row = self.rows[i]
            if tail := row.tracker.finish():
                row.request.deltas[row.index] = row.request.deltas.get(row.index, "") + tail
        return finished

    # --- prefix cache bookkeeping (what is kept is the decoder's: ``self.prefixes``, entries
    # with an ``ids`` tensor, most recently used last) -----------------------------------------

    def _prefix_find(self, prompt_ids: list[int], *, min_tokens: int):
        """(kept entry, shared length) for the kept prefix sharing the most leading tokens with
        ``prompt_ids`` (at least ``min_tokens``, never its last token), made the most recently
        used; (None, 0) if none."""
        if not self.prefixes or self.prefix_cache_tokens <= 0:
            return None, 0
        prompt = torch.tensor(prompt_ids)
        best, best_length = None, 0
        for entry in self.prefixes:
            n = min(len(entry.ids), len(prompt) - 1)
            if n <= best_length:
                continue
            differs = (entry.ids[:n] != prompt[:n]).nonzero()
            shared = int(differs[0]) if len(differs) else n
            if shared > best_length:
                best, best_length = entry, shared
        if best is None or best_length < min_tokens:
            return None, 0
        self.prefixes.remove(best)
        self.prefixes.append(best)
        return best, best_length

    def _prefix_wanted(self, prompt_ids: list[int]) -> bool:
        """Whether to keep ``prompt_ids`` as a prefix: not when a kept one covers it or it is over
        the budget; kept ones it extends are released (it replaces them)."""
        length = len(prompt_ids)
        if self.prefix_cache_tokens <= 0 or length > self.prefix_cache_tokens:
            return False
        prompt = torch.tensor(prompt_ids)
        for entry in list(self.prefixes):
            n = min(len(entry.ids), length)
            if torch.equal(entry.ids[:n], prompt[:n]):
                if len(entry.ids) >= length:
                    return False  # covered
                self._prefix_release(entry)  # the new prompt extends it
        return True

    def _prefix_trim(self) -> None:
        """Release the least recently used kept prefixes beyond the token budget."""
        while sum(len(e.ids) for e in self.prefixes) > self.prefix_cache_tokens:
            self._prefix_release(self.prefixes[0])

    def _prefix_release(self, entry) -> None:
        self.prefixes.remove(entry)

    def _seen_mask(self, ids: list[int], logits: torch.Tensor, params: SamplingParams) -> torch.Tensor | None:
        if params.repetition_penalty == 1.0:
            return None
        mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        if ids:
            mask[torch.tensor(ids, device=logits.device)] = True
        return mask

    def _advance_rows(self, rows: list[Row], logits: torch.Tensor) -> None:
        """Pick every row's next token from ``logits`` (rows, vocab) in batched operations and
        account for them. Rows that need more than the batched path covers go one by one."""
        alone = [i for i, row in enumerate(rows) if row.grammar is not None]
        for i in alone:
            self._advance(rows[i], logits[i])
        if len(alone) == len(rows):
            return
        if alone:
            keep = [i for i in range(len(rows)) if i not in set(alone)]
            rows, logits = [rows[i] for i in keep], logits[keep]
        params = [row.request.params for row in rows]
        scores = logits.float()
        penalised = [i for i, p in enumerate(params) if p.repetition_penalty != 1.0]
        if penalised:
            seen = torch.zeros_like(scores, dtype=torch.bool)
            seen[penalised] = torch.stack([rows[i].seen_mask for i in penalised])
            penalty = scores.new_tensor([p.repetition_penalty for p in params])[:, None]
            scores = torch.where(seen, torch.where(scores < 0, scores * penalty, scores / penalty), scores)
        tokens = scores.argmax(dim=-1)
        sampled = [i for i, p in enumerate(params) if p.temperature > 0]
        if sampled:
            picked = self._sample(scores[sampled], [params[i] for i in sampled], [rows[i].generator for i in sampled])
            tokens[sampled] = picked
        logprobs = torch.log_softmax(scores, dim=-1).gather(1, tokens[:, None])[:, 0]
        for row, token, logprob in zip(rows, tokens.tolist(), logprobs.tolist(), strict=True):
            self._account(row, token, logprob)

    @staticmethod
    def _sample(scores: torch.Tensor, params: list[SamplingParams], generators: list) -> torch.Tensor:
        """Temperature, top-k then top-p (nucleus) per row, as ``sample_token`` does for one."""
        vocab = scores.shape[-1]
        ks = [p.top_k if p.top_k and p.top_k < vocab else vocab for p in params]
        scores = scores / scores.new_tensor([p.temperature for p in params])[:, None]
        values, indices = torch.topk(scores, max(ks))  # sorted, largest first
        ranks = torch.arange(values.shape[1], device=values.device)
        values = values.masked_fill(ranks[None, :] >= values.new_tensor(ks)[:, None], float("-inf"))
        if any(p.top_p < 1.0 for p in params):
            probs = torch.softmax(values, dim=-1)
            before = torch.cumsum(probs, dim=-1) - probs
            top_p = values.new_tensor([p.top_p if p.top_p < 1.0 else float("inf") for p in params])[:, None]
            values = values.masked_fill(before >= top_p, float("-inf"))  # always keeps the most likely
        probs = torch.softmax(values, dim=-1).cpu()
        choices = [int(torch.multinomial(probs[i], 1, generator=g)) for i, g in enumerate(generators)]
        return indices[torch.arange(len(params)), torch.tensor(choices, device=indices.device)]

    def _account(self, row: Row, token: int, logprob: float) -> None:
        params = row.request.params
        row.last_token = token
        if token in self.eos_ids:
            row.finish_reason = "stop"
            return
        row.logprobs.append(logprob)
        row.seen.append(token)
        if row.seen_mask is not None:
            row.seen_mask[token] = True
        row.request.new_tokens += 1
        if delta := row.tracker.add(token):
            row.request.deltas[row.index] = row.request.deltas.get(row.index, "") + delta
        if row.tracker.stopped:
            row.finish_reason = "stop"
        elif len(row.tracker.tokens) >= params.max_new_tokens:
            row.finish_reason = "length"

    def _advance(self, row: Row, logits: torch.Tensor) -> None:
        """Pick the row's next token from ``logits`` and account for it."""
        params = row.request.params
        penalised = apply_repetition_penalty(
            logits.float(), torch.tensor(sorted(set(row.seen)), device=logits.device), params.repetition_penalty
        )
        if row.grammar is not None:
            penalised = row.grammar.mask_logits(penalised)
        token = sample_token(penalised, params, row.generator)
        if row.grammar is not None and token not in self.eos_ids:
            row.grammar.consume(token)
        self._account(row, token, float(torch.log_softmax(penalised, dim=-1)[token]))
        if row.grammar is not None and row.grammar.is_stopped and token not in self.eos_ids:
            row.finish_reason = "stop"  # the grammar's document is complete


class BatchDecoder(RowSampler):
    """The engine's decoder on a transformers model (see the module doc)."""

    def __init__(self, model, tokenizer, *, eos_ids: set[int], prefill_chunk: int = 256,
                 prefix_cache_tokens: int = 0, step: LlamaStep | None | bool = True):
        super().__init__(tokenizer, eos_ids=eos_ids, prefill_chunk=prefill_chunk,
                         prefix_cache_tokens=prefix_cache_tokens)
        self.model = model
        self.device = next(model.parameters()).device
        # True: build the fast step for this model if it is a Llama; a LlamaStep: share that one.
        self.step = LlamaStep.build(model) if step is True else (step or None)
        self.cache: KVCache | None = None
        self.mask: torch.Tensor | None = None  # (rows, cached length) bool, True = real token

    def reset(self) -> None:
        """Forget every row, the batch's cache and the kept prefixes (after a failed step)."""
        self.rows, self.cache, self.mask, self.prefixes = [], None, None, []

    @property
    def cached_tokens(self) -> int:
        """Size of the batch's KV cache in memory, in tokens: its buffers' row slots x column
        capacity, spare room included (the live part, rows x length, is at most that), so that
        the engine's GENAI_ENGINE_MAX_CACHED_TOKENS bounds what the cache really takes."""
        return 0 if self.cache is None else self.cache.allocated_tokens

    # --- prefill ----------------------------------------------------------------------------

    @torch.inference_mode()
    def prefill_step(self, request: BatchRequest) -> bool:
        """Run the next chunk of the request's prompt. True once it has joined the batch."""
        if request.cache is None:
            self.prefix_attach(request)
        if request.cache is None:
            request.cache = DynamicCache(config=self.model.config)
        start = request.prefilled
        chunk = request.prompt_ids[start : start + self.prefill_chunk]
        ids = torch.tensor([chunk], dtype=torch.long, device=self.device)
        positions = torch.arange(start, start + len(chunk), device=self.device).unsqueeze(0)
        out = self.model(
            input_ids=ids, position_ids=positions, cache=request.cache, use_cache=True, logits_to_keep=1
        )
        request.prefilled += len(chunk)
        if request.prefilled < len(request.prompt_ids):
            return False
        self._prefix_store(request.prompt_ids, request.cache.layers, 0)
        self._join(request, out.logits[0, -1])
        return True

    @torch.inference_mode()
    def prefill_many(self, requests: list[BatchRequest]) -> None:
        """Prefill the whole prompts of ``requests`` (none started) in one forward pass, then join
        each to the batch. Rows are left-padded to the longest prompt; the mask and per-row
        positions make each row compute what it would alone (up to float summation order)."""
        lengths = [len(r.prompt_ids) for r in requests]
        width = max(lengths)
        ids = torch.zeros(len(requests), width, dtype=torch.long)
        mask = torch.zeros(len(requests), width, dtype=torch.long)
        for i, request in enumerate(requests):
            ids[i, width - lengths[i] :] = torch.tensor(request.prompt_ids)
            mask[i, width - lengths[i] :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device),
            cache=cache, use_cache=True, logits_to_keep=1,
        )
        for i, request in enumerate(requests):
            start = width - lengths[i]
            own = DynamicCache(config=self.model.config)
            for index, layer in enumerate(cache.layers):
                own.update(layer.keys[i : i + 1, :, start:], layer.values[i : i + 1, :, start:], index)
            request.cache, request.prefilled = own, lengths[i]
            self._prefix_store(request.prompt_ids, own.layers, 0)
            self._join(request, out.logits[i, -1])

    # --- prefix cache -----------------------------------------------------------------------

    def prefix_attach(self, request: BatchRequest, *, min_tokens: int = 8) -> bool:
        """Start a request not yet prefilled from the longest kept prefix its prompt shares (at
        least ``min_tokens``, never the prompt's last token: its logits pick the first token)."""
        if request.prefilled or request.cache is not None:
            return False
        best, best_length = self._prefix_find(request.prompt_ids, min_tokens=min_tokens)
        if best is None:
            return False
        cache = DynamicCache(config=self.model.config)
        for index in range(best.keys.shape[0]):
            cache.update(best.keys[index, :, :, :best_length], best.values[index, :, :, :best_length], index)
        request.cache, request.prefilled = cache, best_length
        self.prefix_hits += best_length
        return True

    def _prefix_store(self, prompt_ids: list[int], layers, start: int) -> None:
        """Keep the prompt's KV (layers' (1, heads, length, dim) keys and values from column
        ``start``) unless a kept prompt already covers it; drop the least recently used beyond
        the token budget."""
        if not self._prefix_wanted(prompt_ids):
            return
        length = len(prompt_ids)
        keys = torch.stack([layer.keys[:, :, start:start + length] for layer in layers])
        values = torch.stack([layer.values[:, :, start:start + length] for layer in layers])
        self.prefixes.append(_Prefix(ids=torch.tensor(prompt_ids), keys=keys, values=values))
        self._prefix_trim()

    def _join(self, request: BatchRequest, logits: torch.Tensor) -> None:
        cache = request.cache
        request.cache = None
        self._rows_start(request, logits)
        # one row: the n candidates share it
        self._place(request.rows, [(layer.keys, layer.values) for layer in cache.layers], len(request.prompt_ids))

    def _place(self, rows: list[Row], layers, length: int) -> None:
        """``rows`` join the batch, each with a copy of ``layers``' one row of ``length`` tokens."""
        mask = torch.ones(len(rows), length, dtype=torch.bool, device=self.device)
        if self.cache is None:
            self.cache, self.mask = KVCache.from_layers(layers, copies=len(rows)), mask
        else:
            total = max(self.mask.shape[1], length)
            self.cache.add_rows(layers, copies=len(rows))
            self.mask = torch.cat([_pad_left(self.mask, total, 1), _pad_left(mask, total, 1)])
        self.rows.extend(rows)
        self._evict()

    @torch.inference_mode()
    def adopt(self, rows: list[Row]) -> None:
        """Rows another decoder started go on here (``workers.ml.llamacpp.HandoffDecoder``): each
        row's tokens so far (its prompt and what it generated but the last, which the next step
        feeds) are prefilled, the prompt from the prefix cache where it is kept, and the row joins
        the batch as it is: same text, generator, penalties and budget."""
        for row in rows:
            ids = [*row.request.prompt_ids, *row.tracker.tokens[:-1]]
            probe = BatchRequest(prompt_ids=[*ids, row.last_token], params=row.request.params)
            self.prefix_attach(probe)  # never covers the probe's last token: at most all of ``ids``
            cache = probe.cache or DynamicCache(config=self.model.config)
            for start in range(probe.prefilled, len(ids), self.prefill_chunk):
                chunk = ids[start : start + self.prefill_chunk]
                self.model(
                    input_ids=torch.tensor([chunk], device=self.device), cache=cache, use_cache=True, logits_to_keep=1,
                    position_ids=torch.arange(start, start + len(chunk), device=self.device).unsqueeze(0),
                )
            self._place([row], [(layer.keys, layer.values) for layer in cache.layers], len(ids))

    def release(self, request: BatchRequest) -> None:
        request.cache = None

    # --- decode -----------------------------------------------------------------------------

    def _forward(self) -> torch.Tensor:
        ids = torch.tensor([r.last_token for r in self.rows], dtype=torch.long, device=self.device)
        positions = self.mask.sum(dim=1)
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=1)
        if self.step is not None:
            return self.step(ids, positions, self.cache, self.mask)
        return self._transformers_step(ids, positions)

    def _transformers_step(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The step by transformers' forward (a model ``LlamaStep`` does not cover), on a
        transformers cache holding the batch's, its new column copied back."""
        cache = DynamicCache(config=self.model.config)
        layers = self.cache.keys.shape[0]
        for index in range(layers):
            cache.update(*self.cache.layer(index), index)
        out = self.model(
            input_ids=ids[:, None], attention_mask=self.mask.long(), position_ids=positions[:, None],
            cache=cache, use_cache=True,
        )
        self.cache.reserve(1)
        keys, values = self.cache.live()
        for index in range(layers):
            keys[index, :, :, self.cache.length] = cache.layers[index].keys[:, :, -1]
            values[index, :, :, self.cache.length] = cache.layers[index].values[:, :, -1]
        self.cache.length += 1
        return out.logits[:, -1]

    def _evict(self) -> None:
        """Drop finished rows from the batch (the cache moves its last rows into their slots, so
        the rest change places) and cut columns that are padding for all the rest."""
        finished = self._finished_take()
        if not finished:
            return
        if len(finished) == len(self.rows):
            self.rows, self.cache, self.mask = [], None, None
            return
        order = self.cache.remove_rows(finished)
        self.rows = [self.rows[i] for i in order]
        self.mask = self.mask[order]
        first = int(self.mask.any(dim=0).nonzero()[0])
        if first:
            self.mask = self.mask[:, first:]
            self.cache.drop_leading(first)
