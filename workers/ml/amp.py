"""Mixed precision for forward passes, the same for every training and inference loop."""

from __future__ import annotations

import torch


def autocast(device, amp_dtype: str):
    """Mixed precision for forward passes: ``amp_dtype="bfloat16"`` on a GPU or a CPU with native
    bf16 (AMX: ~2x a float32 training step of SmolLM2 on 2 cores); a no-op context otherwise."""
    device_type = torch.device(device).type if device is not None else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp_dtype == "bfloat16")
