"""Continuous batching for a transformers causal LM: every active candidate of every request
advances by one token per forward pass; requests join at step boundaries and leave the moment
they finish.

How sequences of different lengths share one batch: the KV cache is one ``DynamicCache`` whose
rows are left-padded to the longest row; the 2-D attention mask marks the padding and explicit
position ids keep each row's positions its own, so a row computes what it would alone (up to
float summation order). Finished rows are dropped from the cache at once, and leading columns
that are padding in every remaining row are cut, so the cache never grows past what the active
rows need.

A joining request is prefilled alone (batch of one, no padding), in chunks of ``prefill_chunk``
tokens with one decoding step of the running batch between chunks, so a long prompt does not
stall the others; its cache is then repeated for its ``n`` candidates and merged into the batch.
Several short prompts that arrive together are prefilled in one forward pass instead
(``prefill_many``: left-padded, at most ``prefill_chunk`` padded tokens in all), each row's cache
then cut to its own prompt and joined as above, so a burst of requests waits for one pass rather
than one pass and one decoding step each.

Pure PyTorch/transformers: no Django, no threads (``workers.runtime.engine`` drives it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from workers.ml.decoding import Completion, SamplingParams, TextTracker, apply_repetition_penalty, sample_token
from workers.ml.grammar import GrammarMatcher, grammar_tokenizer


@dataclass(eq=False)
class Row:
    """One candidate of a request: a row of the batch."""

    request: BatchRequest
    index: int
    tracker: TextTracker
    generator: torch.Generator | None
    seen: list[int]
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


class BatchDecoder:
    def __init__(self, model, tokenizer, *, eos_ids: set[int], prefill_chunk: int = 256):
        self.model = model
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.prefill_chunk = prefill_chunk
        self.device = next(model.parameters()).device
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # (rows, cached length), 1 = real token

    @property
    def cached_tokens(self) -> int:
        """Padded size of the batch's KV cache, in tokens (rows x length)."""
        return 0 if self.mask is None else int(self.mask.numel())

    # --- prefill ----------------------------------------------------------------------------

    @torch.inference_mode()
    def prefill_step(self, request: BatchRequest) -> bool:
        """Run the next chunk of the request's prompt. True once it has joined the batch."""
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
            self._join(request, out.logits[i, -1])

    def _join(self, request: BatchRequest, logits: torch.Tensor) -> None:
        params = request.params
        cache = request.cache
        request.cache = None
        if params.n > 1:
            cache.batch_repeat_interleave(params.n)
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
                grammar=(GrammarMatcher(grammar_tokenizer(self.tokenizer, self.eos_ids), params.grammar)
                         if params.grammar else None),
            )
            request.rows.append(row)
            self._advance(row, logits)
        length = len(request.prompt_ids)
        mask = torch.ones(params.n, length, dtype=torch.long, device=self.device)
        if self.cache is None:
            self.cache, self.mask = cache, mask
        else:
            total = max(self.mask.shape[1], length)
            for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
                mine.keys = torch.cat([_pad_left(mine.keys, total, 2), _pad_left(theirs.keys, total, 2)])
                mine.values = torch.cat([_pad_left(mine.values, total, 2), _pad_left(theirs.values, total, 2)])
            self.mask = torch.cat([_pad_left(self.mask, total, 1), _pad_left(mask, total, 1)])
        self.rows.extend(request.rows)
        self._evict()

    # --- decode -----------------------------------------------------------------------------

    @torch.inference_mode()
    def decode_step(self) -> None:
        """One forward pass for every active row, then sampling, text and finishing per row."""
        for row in self.rows:
            if row.request.cancelled and row.finish_reason is None:
                row.finish_reason = "cancelled"
        self._evict()
        if not self.rows:
            return
        ids = torch.tensor([[r.last_token] for r in self.rows], dtype=torch.long, device=self.device)
        positions = self.mask.sum(dim=1, keepdim=True)
        self.mask = torch.cat([self.mask, torch.ones_like(positions)], dim=1)
        out = self.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=positions,
            cache=self.cache,
            use_cache=True,
        )
        logits = out.logits[:, -1]
        for i, row in enumerate(self.rows):
            self._advance(row, logits[i])
        self._evict()

    def _advance(self, row: Row, logits: torch.Tensor) -> None:
        """Pick the row's next token from ``logits`` and account for it."""
        params = row.request.params
        penalised = apply_repetition_penalty(
            logits.float(), torch.tensor(sorted(set(row.seen)), device=logits.device), params.repetition_penalty
        )
        if row.grammar is not None:
            penalised = row.grammar.mask_logits(penalised)
        token = sample_token(penalised, params, row.generator)
        row.last_token = token
        if token in self.eos_ids:
            row.finish_reason = "stop"
            return
        if row.grammar is not None:
            row.grammar.consume(token)
        row.logprobs.append(float(torch.log_softmax(penalised, dim=-1)[token]))
        row.seen.append(token)
        row.request.new_tokens += 1
        if delta := row.tracker.add(token):
            row.request.deltas[row.index] = row.request.deltas.get(row.index, "") + delta
        if row.tracker.stopped or (row.grammar is not None and row.grammar.is_stopped):
            row.finish_reason = "stop"  # a stop sequence, or the grammar's document is complete
        elif len(row.tracker.tokens) >= params.max_new_tokens:
            row.finish_reason = "length"

    def _evict(self) -> None:
        """Drop finished rows from the batch and cut columns that are padding for all the rest."""
        finished = [r for r in self.rows if r.finish_reason is not None]
        for row in finished:
            if tail := row.tracker.finish():
                row.request.deltas[row.index] = row.request.deltas.get(row.index, "") + tail
        if not finished:
            return
        keep = [i for i, r in enumerate(self.rows) if r.finish_reason is None]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache, self.mask = None, None
            return
        self.cache.batch_select_indices(torch.tensor(keep, device=self.device))
        self.mask = self.mask[keep]
        first = int(self.mask.any(dim=0).nonzero()[0])
        if first:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, first:]
                layer.values = layer.values[:, :, first:]
