"""Device and dtype, chosen once per worker process: CUDA with bf16 where present (fp16 on GPUs
without bf16), CPU with fp32 otherwise. ``GENAI_DEVICE`` forces one (cpu, cuda, cuda:1)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings


@dataclass(frozen=True)
class Device:
    device: object  # torch.device
    dtype: object  # torch.dtype

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def device_choose(setting: str) -> Device:
    import torch

    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"GENAI_DEVICE={setting!r} but CUDA is not available")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Device(device=device, dtype=dtype)
    return Device(device=device, dtype=torch.float32)


@lru_cache(maxsize=1)
def device_get() -> Device:
    return device_choose(settings.GENAI_DEVICE)
