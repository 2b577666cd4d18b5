"""Device and dtype, chosen once per worker process: CUDA with bf16 where present (fp16 on GPUs
without bf16), the CPU otherwise with GENAI_CPU_DTYPE (see docs/benchmarks.md for why).
``GENAI_DEVICE`` forces one (cpu, cuda, cuda:1). A bad setting stops the worker at start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_DEVICE_SETTING = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
CPU_DTYPES = ("float32", "bfloat16")


class DeviceSettingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Device:
    device: object  # torch.device
    dtype: object  # torch.dtype

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def device_choose(setting: str, *, cpu_dtype: str = "bfloat16", threads: int = 0) -> Device:
    import torch

    if not _DEVICE_SETTING.match(setting):
        raise DeviceSettingError(f"GENAI_DEVICE={setting!r} is not one of auto, cpu, cuda, cuda:N")
    if cpu_dtype not in CPU_DTYPES:
        raise DeviceSettingError(f"GENAI_CPU_DTYPE={cpu_dtype!r} is not one of {', '.join(CPU_DTYPES)}")
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceSettingError(f"GENAI_DEVICE={setting!r} but this machine has no usable CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceSettingError(
                f"GENAI_DEVICE={setting!r} but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Device(device=device, dtype=dtype)
    if threads:
        torch.set_num_threads(threads)
    return Device(device=device, dtype=getattr(torch, cpu_dtype))


@lru_cache(maxsize=1)
def device_get() -> Device:
    return device_choose(settings.GENAI_DEVICE, cpu_dtype=settings.GENAI_CPU_DTYPE, threads=settings.GENAI_TORCH_THREADS)
