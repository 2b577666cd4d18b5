"""Device, dtype and weight format, chosen once per worker process (see docs/benchmarks.md,
"Serving precision", for the measurements behind each default).

- CUDA where present: bf16 (fp16 on GPUs without bf16), dense weights.
- CPU: ``GENAI_CPU_WEIGHTS=int4`` (default) serves the decoder's Q4_1 projections in their own
  4-bit form (``workers.ml.quantized``: exact, 4x fewer bytes than bf16); that kernel computes in
  bfloat16, so the LM does too. ``dense`` keeps dequantised weights in ``GENAI_CPU_DTYPE``:
  ``auto`` picks bfloat16 where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX) and float32
  elsewhere (on AVX2 alone, bf16 matmuls are emulated: a prompt's prefill took 3.6x longer).

``GENAI_DEVICE`` forces a device (cpu, cuda, cuda:1). A bad setting stops the worker at start.

Threads (``torch_threads_isolate``): torch's CPU kernels run on OpenMP, and every thread that runs
a multi-threaded kernel gets an OpenMP team of its own that stays. With a second team in the
process, even one that sits idle in a task thread that embedded a query once, the engine thread's
decoding step took 1.6x as long on 2 cores (SmolLM2 int4, batch 1: 21-26 ms against 13-14 ms with
the engine thread the only team; docs/benchmarks.md, "One OpenMP team"). So in a worker that
serves the LM on CPU with the batched engine, the engine thread computes with
``GENAI_TORCH_THREADS`` threads and every other thread (the tasks: model loading, retrieval,
classifiers, embeddings) with one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_DEVICE_SETTING = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
CPU_DTYPES = ("auto", "float32", "bfloat16")
CPU_WEIGHTS = ("int4", "dense")


class DeviceSettingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Device:
    device: object  # torch.device
    dtype: object  # torch.dtype the LM computes in
    weights: str = "dense"  # "int4": Q4 projections packed (CPU); "dense"

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def cpu_has_native_bf16() -> bool:
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


# Set at worker start (``torch_threads_isolate``): the engine thread's torch threads, or 0 when
# every thread keeps the process's setting (tests, commands, workers without an engine).
_engine_threads = 0


def torch_threads_isolate(threads: int) -> None:
    """From now on, in this process, only the engine thread computes with ``threads`` torch
    threads (``torch_threads_engine``); every other thread computes with one
    (``torch_threads_single`` in each task, and as the default of threads not started yet)."""
    global _engine_threads
    _engine_threads = max(1, threads)
    torch_threads_single()


def torch_threads_isolated() -> bool:
    return _engine_threads > 0


def torch_threads_single() -> None:
    """This thread computes with one torch thread (no OpenMP team of its own)."""
    import torch

    torch.get_num_threads()  # torch sets a thread's count at its first use: do that first
    torch.set_num_threads(1)


def torch_threads_engine() -> None:
    """The engine thread: ``GENAI_TORCH_THREADS`` (or torch's default) threads when the process
    isolates it (``torch_threads_isolate``); else it keeps the process's setting."""
    if not _engine_threads:
        return
    import torch

    torch.get_num_threads()
    torch.set_num_threads(_engine_threads)


def device_choose(setting: str, *, cpu_dtype: str = "auto", cpu_weights: str = "dense", threads: int = 0) -> Device:
    import torch

    if not _DEVICE_SETTING.match(setting):
        raise DeviceSettingError(f"GENAI_DEVICE={setting!r} is not one of auto, cpu, cuda, cuda:N")
    if cpu_dtype not in CPU_DTYPES:
        raise DeviceSettingError(f"GENAI_CPU_DTYPE={cpu_dtype!r} is not one of {', '.join(CPU_DTYPES)}")
    if cpu_weights not in CPU_WEIGHTS:
        raise DeviceSettingError(f"GENAI_CPU_WEIGHTS={cpu_weights!r} is not one of {', '.join(CPU_WEIGHTS)}")
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
    if cpu_weights == "int4":
        from workers.ml.quantized import int4_available

        if not int4_available():
            raise DeviceSettingError("GENAI_CPU_WEIGHTS=int4 but this torch build has no CPU int4 kernel; use dense")
        if cpu_dtype == "float32":
            raise DeviceSettingError(
                "GENAI_CPU_WEIGHTS=int4 computes in bfloat16 (its float32 path is slow); "
                "set GENAI_CPU_DTYPE=auto or bfloat16, or GENAI_CPU_WEIGHTS=dense"
            )
        return Device(device=device, dtype=torch.bfloat16, weights="int4")
    if cpu_dtype == "auto":
        cpu_dtype = "bfloat16" if cpu_has_native_bf16() else "float32"
    return Device(device=device, dtype=getattr(torch, cpu_dtype))


def batch_cpu_weights(requested: str = "auto") -> str:
    """The CPU weight format for a process that drafts many texts at once (``copy_batch``,
    ``copy_evaluate``) and serves no single stream: ``auto`` is ``dense`` (float32) on a CPU without
    native bf16, where the int4 kernel's bfloat16 activations and everything around them are
    emulated (a 46-product copy run at 16 products at once: 5.3 s a product dense, 9.6 s int4 on
    the 2-core AVX2 machine of docs/benchmarks.md, although int4 decodes one stream 2x faster),
    and the worker's setting elsewhere. Call it before the first model is loaded."""
    if requested not in ("auto", *CPU_WEIGHTS):
        raise DeviceSettingError(f"weights {requested!r} is not one of auto, {', '.join(CPU_WEIGHTS)}")
    if requested == "auto":
        requested = "dense" if not cpu_has_native_bf16() else settings.GENAI_CPU_WEIGHTS
    if requested != settings.GENAI_CPU_WEIGHTS:
        settings.GENAI_CPU_WEIGHTS = requested
        device_get.cache_clear()
    return requested


def device_amp_dtype() -> str:
    """``"bfloat16"`` where the worker computes in bf16 (CUDA, CPUs with native bf16): training and
    classifier forward passes then run under autocast, float32 weights kept; ``""`` elsewhere. On a
    CPU without native bf16 (AVX2 alone) autocast is off even when the served LM runs its int4
    kernel in bf16: emulated bf16 made a LoRA training step about 14x slower than float32 there."""
    device = device_get()
    if device.dtype_name != "bfloat16":
        return ""
    if getattr(device.device, "type", "cpu") == "cpu" and not cpu_has_native_bf16():
        return ""
    return "bfloat16"


@lru_cache(maxsize=1)
def device_get() -> Device:
    return device_choose(
        settings.GENAI_DEVICE,
        cpu_dtype=settings.GENAI_CPU_DTYPE,
        cpu_weights=settings.GENAI_CPU_WEIGHTS,
        threads=settings.GENAI_TORCH_THREADS,
    )
