"""Weight-only int4 linear layers for serving a Q4_1 GGUF model on the CPU without losing anything.

SmolLM2's GGUF stores every decoder-layer projection as Q4_1: blocks of 32 input weights, each
``w = d * q + m`` with a 4-bit ``q`` and the block's scale ``d`` and minimum ``m``. Dequantising
it (``generation.lm.lm_prepare``) makes a dense copy 4x (bf16) to 8x (fp32) larger than
the information it holds, and a batch-1 decoding step spends its time streaming those bytes.
PyTorch ships a CPU kernel for exactly this layout, ``aten::_weight_int4pack_mm_for_cpu``
(groups along the input dimension, ``w = (q - 8) * scale + zero``, so ``zero = m + 8 d``); this
module finds each block's grid again from the dense weights and packs them for that kernel.

Nothing is approximated: a layer is packed only when every weight of it lies on its block's
4-bit grid (within ``tolerance`` of a grid step), which holds for a dequantised Q4_1 tensor and
not for anything else (the Q8_0 embedding and the ``lm_head`` tied to it, a LoRA-merged copy,
a float checkpoint): those stay dense. The kernel computes in the activations' dtype, which
must be bfloat16 (its float32 path is several times slower than a dense float32 matmul, its
float16 path slower still; measured in bench/quantization.py).

Pure PyTorch: no Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

GROUP_SIZE = 32
_INNER_K_TILES = 2


def int4_available() -> bool:
    """True where this torch build has the CPU int4 kernel."""
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and hasattr(
        torch.ops.aten, "_convert_weight_to_int4pack_for_cpu"
    )


def q4_grid(weight: torch.Tensor, *, group_size: int = GROUP_SIZE, tolerance: float = 1e-3):
    """``(q, scale, minimum)`` when every group of ``group_size`` input weights of ``weight``
    (out x in) is ``scale * q + minimum`` with integer ``q`` in 0..15 (to ``tolerance`` of a grid
    step), else None. ``q`` is int32 (out x in), ``scale`` and ``minimum`` float32 (out x groups)."""
    out_features, in_features = weight.shape
    if in_features % group_size:
        return None
    groups = weight.detach().float().reshape(out_features, in_features // group_size, group_size)
    minimum = groups.amin(dim=-1)
    scale = (groups.amax(dim=-1) - minimum) / 15
    flat = scale == 0  # a constant block: any scale represents it
    scale = torch.where(flat, torch.ones_like(scale), scale)
    steps = (groups - minimum[..., None]) / scale[..., None]
    q = steps.round()
    if (steps - q).abs().max() > tolerance:
        return None
    return q.to(torch.int32).reshape(out_features, in_features), scale, minimum


class Int4Linear(nn.Module):
    """``nn.Linear`` with 4-bit weights in groups of ``group_size`` (CPU, bfloat16 activations)."""

    def __init__(self, packed: torch.Tensor, scales_zeros: torch.Tensor, *, in_features: int,
                 out_features: int, group_size: int, bias: torch.Tensor | None):
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        self.register_buffer("packed", packed)
        self.register_buffer("scales_zeros", scales_zeros)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, dtype: torch.dtype, group_size: int = GROUP_SIZE,
                    tolerance: float = 1e-3) -> Int4Linear | None:
        """The packed layer, or None when ``linear``'s weights are not on a 4-bit grid."""
        grid = q4_grid(linear.weight, group_size=group_size, tolerance=tolerance)
        if grid is None:
            return None
        q, scale, minimum = grid
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), _INNER_K_TILES)
        # The kernel's layout: (groups, out, 2) with w = (q - 8) * scale + zero.
        scales_zeros = torch.stack([scale.t(), (minimum + 8 * scale).t()], dim=-1).contiguous().to(dtype)
        bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        return cls(packed, scales_zeros, in_features=linear.in_features, out_features=linear.out_features,
                   group_size=group_size, bias=bias)

    @classmethod
    def empty(cls, *, in_features: int, out_features: int, group_size: int, dtype: torch.dtype,
              bias: bool) -> Int4Linear:
        """A layer with meta tensors of the packed shapes, to be filled by ``load_state_dict(assign=True)``."""
        meta = torch.device("meta")
        return cls(
            torch.empty(out_features, in_features // 2, dtype=torch.uint8, device=meta),
            torch.empty(in_features // group_size, out_features, 2, dtype=dtype, device=meta),
            in_features=in_features, out_features=out_features, group_size=group_size,
            bias=torch.empty(out_features, dtype=dtype, device=meta) if bias else None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.reshape(-1, shape[-1]).contiguous(), self.packed, self.group_size, self.scales_zeros
        )
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"


@dataclass(frozen=True)
class PackReport:
    packed: int  # layers now Int4Linear
    names: tuple[str, ...]  # their module names
    dense: tuple[str, ...]  # Linear layers left as they were (not on a 4-bit grid)
    bytes_before: int  # weight bytes of the packed layers, dense, before
    bytes_after: int  # the same layers' bytes once packed


def linears_replace_empty(model: nn.Module, names: list[str], *, dtype: torch.dtype, group_size: int) -> None:
    """Replace the named ``nn.Linear`` layers of ``model`` by empty ``Int4Linear`` ones (loading a
    packed checkpoint into a model built on the meta device)."""
    for name in names:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        linear = getattr(parent, child_name)
        setattr(parent, child_name, Int4Linear.empty(
            in_features=linear.in_features, out_features=linear.out_features, group_size=group_size,
            dtype=dtype, bias=linear.bias is not None,
        ))


def linears_pack_int4(model: nn.Module, *, dtype: torch.dtype = torch.bfloat16, group_size: int = GROUP_SIZE,
                      tolerance: float = 1e-3) -> PackReport:
    """Replace, in place, every ``nn.Linear`` of ``model`` whose weights lie on a 4-bit grid by an
    ``Int4Linear``; the others (and every non-Linear module) are left alone. ``model`` should be
    in ``dtype`` already. A tied weight (lm_head = input embedding) is only left if not packed."""
    names, dense, before, after = [], [], 0, 0
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, nn.Linear):
                continue
            replacement = Int4Linear.from_linear(child, dtype=dtype, group_size=group_size, tolerance=tolerance)
            full = f"{parent_name}.{name}" if parent_name else name
            if replacement is None:
                dense.append(full)
                continue
            before += child.weight.numel() * child.weight.element_size()
            after += replacement.packed.numel() * replacement.packed.element_size()
            after += replacement.scales_zeros.numel() * replacement.scales_zeros.element_size()
            setattr(parent, name, replacement)
            names.append(full)
    return PackReport(packed=len(names), names=tuple(names), dense=tuple(dense), bytes_before=before,
                      bytes_after=after)
