"""One decoding step of a Llama-architecture causal LM (SmolLM2 and its merged adapters) written
as the few tensor operations it needs, for the continuous-batching decoder
(``workers.ml.batching``).

Why: a batch of one token per row spends most of transformers' forward pass outside the
arithmetic (module calls, mask building, cache bookkeeping that concatenates the whole cache at
every layer): on 2 CPU cores a batch-1 step of SmolLM2-135M (30 layers) took about twice what its
matrix products need (profile in docs/benchmarks.md). This step reads the same weights (the
modules' own parameters, int4-packed or dense, nothing copied but the fused projections) and
computes the same function:

- q, k and v come from one matrix product (their weights concatenated), gate and up likewise;
- the rotary embedding is applied to q and k together, with cos/sin from the model's own
  ``rotary_emb`` module;
- the KV cache is preallocated with room for more rows and columns (``KVCache``): the step
  writes one column and attends over a view, instead of concatenating the cache, and rows join
  and leave without copying the others;
- grouped-query attention without repeating k and v: the query heads of one KV head are laid out
  as that head's queries (a decoding step has one query position, so they need no causal mask);
- on CPU, a dense bfloat16 output layer (SmolLM2's: the GGUF holds it as Q8_0, not on a 4-bit
  grid) is also kept as int8 rows with one scale each (``Int8Head``), used for batches of at
  most ``INT8_HEAD_MAX_ROWS`` rows: a batch-1 step reads the 49,152 x 576 matrix once, and reading
  it as int8 took 2.6-2.8 ms against 5.6-6.1 ms in bfloat16 (a fifth of the whole step); from 6
  rows on the bfloat16 product was faster (measured in docs/benchmarks.md).

Prefill keeps transformers' own forward pass (its cost is in the arithmetic). ``LlamaStep.build``
returns None for a model it does not cover (another architecture, a rope scaling that changes
with the length); the decoder then runs transformers' forward for the steps too.

Pure PyTorch: no Django.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workers.ml.quantized import Int4Linear


class KVCache:
    """Keys and values of every layer for the rows of a batch, in buffers with room to spare:
    ``keys``/``values`` are (layers, row slots, kv heads, column capacity, head dim); the live
    cache is rows ``0 .. rows-1`` by columns ``start .. start+length-1`` (rows left-padded, the
    padding marked by the decoder's mask; what padding columns hold is never attended).

    Why the room: rows join and leave the batch at almost every step of short generations, and a
    cache that is exactly the live size must be copied whole for each join, each leave and the
    next step's column. Here a leaving row is replaced by the last live row (one row copied), a
    joining row is written right-aligned into a free slot (its own columns copied), the next
    column and cut leading columns are views; the whole cache is copied only when the buffers
    lack room (more rows than slots, a prompt longer than the columns before the live ones, the
    last column reached), and then into buffers with headroom (row slots a power of two, half the
    length or ``grow`` columns more, whichever is larger), so that happens rarely.
    ``reallocations`` counts those copies."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int, *, rows: int | None = None,
                 start: int = 0, grow: int = 64):
        self.keys, self.values, self.length, self.grow = keys, values, length, grow
        self.rows = keys.shape[1] if rows is None else rows
        self.start = start
        self.reallocations = 0

    @classmethod
    def from_layers(cls, layers: list[tuple[torch.Tensor, torch.Tensor]], *, copies: int = 1,
                    grow: int = 64) -> KVCache:
        """From per-layer (rows, heads, length, dim) keys and values (a transformers cache's),
        each row ``copies`` times in a row."""
        keys = layers[0][0]
        empty = keys.new_zeros(len(layers), 0, keys.shape[1], 0, keys.shape[3])
        cache = cls(empty, empty, 0, grow=grow)
        cache.add_rows(layers, copies=copies)
        cache.reallocations = 0
        return cache

    @property
    def allocated_tokens(self) -> int:
        """What the buffers hold room for, in tokens (row slots x column capacity): the memory
        the cache takes, spare rows and columns included."""
        return int(self.keys.shape[1] * self.keys.shape[3])

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``index``'s keys and values in use, (rows, heads, length, dim) views."""
        columns = slice(self.start, self.start + self.length)
        return self.keys[index, : self.rows, :, columns], self.values[index, : self.rows, :, columns]

    def live(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the live rows from the first live column to the capacity,
        (layers, rows, heads, columns, dim) views: column ``length`` is the next one to write."""
        return self.keys[:, : self.rows, :, self.start :], self.values[:, : self.rows, :, self.start :]

    def reserve(self, columns: int) -> None:
        """Room for ``columns`` more columns."""
        self._room(rows=self.rows, before=0, after=columns)

    def _room(self, *, rows: int, before: int, after: int) -> None:
        """Room for ``rows`` row slots, ``before`` columns before the live ones and ``after``
        after them: the buffers as they are when they have it, else new ones with headroom."""
        slots, capacity = self.keys.shape[1], self.keys.shape[3]
        if rows <= slots and before <= self.start and self.start + self.length + after <= capacity:
            return
        slots = max(slots, 1 << max(rows - 1, 0).bit_length())
        start = before + self.grow // 4  # a later, longer prompt can often join without a copy
        capacity = start + self.length + after + max(self.grow, self.length // 2)
        layers, _, heads, _, dim = self.keys.shape
        # zeros, not empty: padding columns are masked, and a masked NaN would still poison a sum
        keys = self.keys.new_zeros(layers, slots, heads, capacity, dim)
        values = self.values.new_zeros(layers, slots, heads, capacity, dim)
        old, new = slice(self.start, self.start + self.length), slice(start, start + self.length)
        keys[:, : self.rows, :, new] = self.keys[:, : self.rows, :, old]
        values[:, : self.rows, :, new] = self.values[:, : self.rows, :, old]
        self.keys, self.values, self.start = keys, values, start
        self.reallocations += 1

    def add_rows(self, layers: list[tuple[torch.Tensor, torch.Tensor]], *, copies: int = 1) -> None:
        """Append per-layer (rows, heads, length, dim) keys and values as new live rows, each row
        ``copies`` times in a row, right-aligned with the others (left-padded to the longer
        length: the live rows too when these are longer)."""
        rows, length = layers[0][0].shape[0], layers[0][0].shape[2]
        added = rows * copies
        wider = max(length - self.length, 0)
        self._room(rows=self.rows + added, before=wider, after=0)
        self.start -= wider
        self.length += wider
        end = self.start + self.length
        new = slice(self.rows, self.rows + added)
        for index, (keys, values) in enumerate(layers):
            self.keys[index, new, :, end - length : end].unflatten(0, (rows, copies)).copy_(keys.unsqueeze(1))
            self.values[index, new, :, end - length : end].unflatten(0, (rows, copies)).copy_(values.unsqueeze(1))
        self.rows += added

    def remove_rows(self, indices: list[int]) -> list[int]:
        """Drop the live rows at ``indices``: each is replaced by the last live row (that row's
        columns copied), so the survivors change places. Returns their old indices in their new
        order, for the caller to reorder what it keeps per row."""
        order = list(range(self.rows))
        columns = slice(self.start, self.start + self.length)
        for index in sorted(set(indices), reverse=True):  # every row after ``index`` is live by then
            last = len(order) - 1
            if index != last:
                self.keys[:, index, :, columns] = self.keys[:, last, :, columns]
                self.values[:, index, :, columns] = self.values[:, last, :, columns]
                order[index] = order[last]
            order.pop()
        self.rows = len(order)
        return order

    def drop_leading(self, columns: int) -> None:
        """Forget the first ``columns`` columns (padding in every row): a view, their room is
        reclaimed at the next re-allocation."""
        self.start += columns
        self.length -= columns


# torch's CPU int4 kernel packs output rows in blocks (64 with AVX-512, fewer with AVX2): packed
# weights concatenate as they are only at block boundaries. Measured on AVX-512: layers of 32 or 48
# rows fused gave outputs off by more than the outputs themselves, multiples of 64 exactly equal.
INT4_ROW_BLOCK = 64


def _fused(linears: list[nn.Module]) -> nn.Module | None:
    """One layer computing ``linears``' outputs concatenated: their weights side by side
    (int4-packed rows concatenate as they are when each layer's rows fill whole packing blocks),
    or None when they cannot be (different kinds, int4 layers off the block size)."""
    first = linears[0]
    if all(type(m) is nn.Linear for m in linears):
        fused = nn.Linear(first.in_features, sum(m.out_features for m in linears),
                          bias=first.bias is not None, device=first.weight.device, dtype=first.weight.dtype)
        fused.weight.data = torch.cat([m.weight.data for m in linears])
        if first.bias is not None:
            fused.bias.data = torch.cat([m.bias.data for m in linears])
        return fused.requires_grad_(False)
    if all(isinstance(m, Int4Linear) and m.group_size == first.group_size for m in linears):
        if any((m.bias is None) != (first.bias is None) for m in linears):
            return None
        if any(m.out_features % INT4_ROW_BLOCK for m in linears):
            return None
        return Int4Linear(
            torch.cat([m.packed for m in linears]),
            torch.cat([m.scales_zeros for m in linears], dim=1),
            in_features=first.in_features, out_features=sum(m.out_features for m in linears),
            group_size=first.group_size,
            bias=None if first.bias is None else torch.cat([m.bias for m in linears]),
        )
    return None


# Measured on 2 AVX-512 BF16 cores (torch 2.13): the int8 product took 2.6 / 3.2 / 3.3 / 3.6 ms for
# 1 / 2 / 3 / 4 rows against 5.6-6.1 ms in bfloat16, and was slower from 6 rows (7.4 vs 6.8).
INT8_HEAD_MAX_ROWS = 4


class Int8Head:
    """A dense output layer's weight as int8 rows with one bfloat16 scale per row (symmetric,
    the row's largest magnitude -> 127), computed by torch's CPU weight-only int8 kernel; then
    the ``refine`` highest logits of each row are computed again from the layer's own weight, so
    the tokens that decoding can pick get the logits the dense layer gives.

    Why the refinement: a Q8_0 weight has one scale per 32 values, and one scale per row rounds
    the blocks of smaller values to a coarser step. Measured on SmolLM2 (1,024 positions of
    English text, against the GGUF's Q8_0 weight in float32): the top token agreed at 95.2 % with
    the int8 logits alone, 97.0 % with the bfloat16 layer, and with the refinement exactly as
    often as with the bfloat16 layer."""

    def __init__(self, weight: torch.Tensor, *, refine: int = 64):
        w = weight.detach().float()
        scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.weight = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        self.scales = scales.to(weight.dtype)
        self.dense = weight.detach()
        self.refine = min(refine, weight.shape[0])

    @classmethod
    def build(cls, lm_head: nn.Module) -> Int8Head | None:
        """The int8 copy of ``lm_head`` where it helps: a dense bfloat16 ``nn.Linear`` without
        bias on CPU, and this torch has the kernel; else None."""
        if type(lm_head) is not nn.Linear or lm_head.bias is not None:
            return None
        weight = lm_head.weight
        if weight.device.type != "cpu" or weight.dtype != torch.bfloat16:
            return None
        if not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
            return None
        return cls(weight)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (rows, vocab) of ``x`` (rows, hidden)."""
        x = x.contiguous()
        logits = torch.ops.aten._weight_int8pack_mm(x, self.weight, self.scales)
        top = logits.topk(self.refine, dim=-1).indices  # (rows, refine)
        exact = torch.bmm(self.dense[top], x.unsqueeze(-1)).squeeze(-1)  # (rows, refine)
        return logits.scatter_(-1, top, exact.to(logits.dtype))


class LlamaStep:
    """``step(ids, positions, cache, mask)``: logits (rows, vocab) of one new token per row,
    written to column ``cache.length`` of ``cache`` (which then grows by one)."""

    def __init__(self, model, layers: list[tuple], *, heads: int, kv_heads: int, head_dim: int):
        self.model = model
        self.layers = layers
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.embed = model.model.embed_tokens
        self.rotary = model.model.rotary_emb
        self.norm = model.model.norm
        self.lm_head = model.lm_head
        self.int8_head = Int8Head.build(model.lm_head)

    @classmethod
    def build(cls, model) -> LlamaStep | None:
        config = getattr(model, "config", None)
        if config is None or getattr(config, "model_type", None) != "llama":
            return None
        rope = getattr(config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") not in ("default", "llama3", "linear"):
            return None  # e.g. dynamic: cos/sin depend on the sequence length
        if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "pretraining_tp", 1) != 1:
            return None
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        layers = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            qkv = _fused([attn.q_proj, attn.k_proj, attn.v_proj])
            gate_up = _fused([mlp.gate_proj, mlp.up_proj])
            if qkv is None or gate_up is None:
                return None
            layers.append((
                layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon, qkv, attn.o_proj,
                layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon,
                gate_up, mlp.down_proj, mlp.intermediate_size if hasattr(mlp, "intermediate_size")
                else mlp.gate_proj.out_features,
            ))
        return cls(model, layers, heads=heads, kv_heads=kv_heads, head_dim=head_dim)

    @staticmethod
    def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        # One fused op (it accumulates in float32 like transformers' RMSNorm, and rounds once
        # where that rounds before the weight's multiplication: bfloat16's last bit).
        return F.rms_norm(x, (x.shape[-1],), weight, eps)

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache, mask: torch.Tensor) -> torch.Tensor:
        """``ids`` and ``positions`` (rows,); ``mask`` (rows, cache.length + 1) bool, True where a
        row attends (its real tokens and the new one)."""
        cache.reserve(1)
        keys, values = cache.live()
        logits = self.forward(ids, positions, keys, values, cache.length, mask)
        cache.length += 1
        return logits

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, keys_all: torch.Tensor, values_all: torch.Tensor,
                column: int, mask: torch.Tensor) -> torch.Tensor:
        """The step on the cache tensors themselves: writes column ``column`` of every layer."""
        rows = ids.shape[0]
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        group = heads // kv_heads
        qk_heads = heads + kv_heads
        length = column + 1
        h = self.embed(ids)  # (rows, hidden)
        cos, sin = self.rotary(h, positions[:, None])  # (rows, 1, dim)
        cos, sin = cos.view(rows, 1, dim), sin.view(rows, 1, dim)
        half = dim // 2
        attn_mask = mask.view(rows, 1, 1, length)
        for index, (w1, eps1, qkv_proj, o_proj, w2, eps2, gate_up_proj, down_proj, inter) in enumerate(self.layers):
            x = self._rms(h, w1, eps1)
            qkv = qkv_proj(x).view(rows, qk_heads + kv_heads, dim)
            qk = qkv[:, :qk_heads]
            rotated = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos + rotated * sin
            keys, values = keys_all[index], values_all[index]
            keys[:, :, column] = qk[:, heads:]
            values[:, :, column] = qkv[:, qk_heads:]
            # (rows, kv heads, group, dim): one KV head's queries as its query "positions"
            q = qk[:, :heads].view(rows, kv_heads, group, dim)
            out = F.scaled_dot_product_attention(q, keys[:, :, :length], values[:, :, :length], attn_mask=attn_mask)
            h = h + o_proj(out.reshape(rows, heads * dim))
            x = self._rms(h, w2, eps2)
            gate_up = gate_up_proj(x)
            h = h + down_proj(F.silu(gate_up[:, :inter]) * gate_up[:, inter:])
        h = self._rms(h, self.norm.weight, self.norm.variance_epsilon)
        if self.int8_head is not None and rows <= INT8_HEAD_MAX_ROWS:
            return self.int8_head(h)
        return self.lm_head(h)
