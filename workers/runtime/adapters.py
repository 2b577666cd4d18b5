"""LoRA adapters at serving time: the base LM plus adapters selectable per request by name.

Design (measured in bench/finetune.py, docs/benchmarks.md): each adapter in use is merged
(``merge_and_unload``, in float32, then cast to the serving dtype) into its own copy of the base
model, served by its own engine (``workers.runtime.engine``). Rows of one engine share one
forward pass, as for the base model; requests without an adapter keep the base engine exactly
as before (nothing is wrapped, no per-row adapter routing), so they are not slowed by the
adapters' existence, only by the CPU the adapters' engines use while they are busy. Merged
weights cost no extra matmuls per token, unlike an unmerged peft model (which adds the LoRA
products to every projection). The price is memory: one model copy per cached adapter
(GENAI_ADAPTER_CACHE_SIZE, least recently used evicted; an evicted engine finishes its requests
and then lets its thread and model go).

Resolution runs per job (``lm_for``): ``model`` "base" or the base model's name -> the base;
"name" or "name@3" -> that ``ModelVersion(family="lm_adapter")``; no model and a ``purpose``
-> the adapter promoted for the purpose (``is_default``), else the base. The cache is keyed by
``name@version``, so a newly promoted adapter is picked up by the next job without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from django.conf import settings

from generation.exceptions import PermanentJobError
from workers.ml.building import model_building
from workers.runtime.cache import ModelCache

logger = logging.getLogger(__name__)

FAMILY = "lm_adapter"
BASE_ALIAS = "base"

def _engine_close(lm) -> None:
    if lm.engine is not None:  # an evicted engine finishes its requests, then stops
        lm.engine.close()


_cache: ModelCache = ModelCache(name="adapter", size=lambda: settings.GENAI_ADAPTER_CACHE_SIZE, on_evict=_engine_close)


def base_model_name() -> str:
    from generation.kinds.generate import base_model_name as name

    return name()


def adapter_version_resolve(model: str | None = None, *, purpose: str | None = None):
    """The ModelVersion a job should use, or None for the base model. An unknown ``model`` is a
    PermanentJobError (the API refuses it first; this covers one archived since)."""
    from generation.models import ModelVersion, ModelVersionStatus
    from generation.selectors import model_version_resolve

    if model in (BASE_ALIAS, base_model_name()):
        return None
    if model:
        version = model_version_resolve(family=FAMILY, name=model)
        if version is None:
            raise PermanentJobError(f"Unknown model {model!r}: no ready LoRA adapter of that name.", code="unknown_model")
        return version
    if purpose:
        return ModelVersion.objects.filter(
            family=FAMILY, purpose=purpose, is_default=True, status=ModelVersionStatus.READY
        ).first()
    return None


def lm_for(model: str | None = None, *, purpose: str | None = None):
    """The LoadedLM a job runs on: the process's base LM, or a merged adapter (see the module doc)."""
    from workers.runtime.models import lm_get

    base = lm_get()
    version = adapter_version_resolve(model, purpose=purpose)
    if version is None:
        return base
    directory = Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path
    weights = directory / "adapter_model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.exists() else 0
    # name@version, plus where and when its files were written (a re-created store never serves stale weights)
    return adapter_lm_get(key=f"{version.label}|{directory}|{stamp}", directory=directory, base=base)


def lm_is_adapter(lm) -> bool:
    """Whether ``lm`` is the base model with a LoRA adapter merged (its version is "<base>+<name>@<n>")."""
    return "+" in lm.version


def adapter_lm_get(*, key: str, directory: Path, base):
    """The cached merged model of adapter ``key`` (``name@version``), built on first use."""
    return _cache.get(key, lambda: adapter_lm_build(directory=directory, base=base, label=key))


@model_building
def adapter_merged_model(directory: Path | str, *, base_name: str | None = None, dtype=None, device=None,
                         weights: str = "dense"):
    """A fresh copy of the base model with the adapter in ``directory`` merged in: loaded and
    merged in float32, then moved to ``dtype`` and ``device``. ``weights="int4"`` packs the
    projections the adapter left on the base's 4-bit grid (``workers.ml.quantized``); the
    merged ones are off it and stay dense."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from generation.lm import lm_prepare

    if not (Path(directory) / "adapter_config.json").exists():
        raise PermanentJobError(f"The adapter's files are missing in {directory}.", code="adapter_missing")
    model = AutoModelForCausalLM.from_pretrained(lm_prepare(base_name), dtype=torch.float32, attn_implementation="sdpa")
    merged = PeftModel.from_pretrained(model, str(directory)).merge_and_unload()
    if weights == "int4":
        from workers.ml.quantized import linears_pack_int4

        linears_pack_int4(merged, dtype=dtype)
    merged.to(device=device or "cpu", dtype=dtype or torch.float32)
    return merged.eval()


def adapter_lm_build(*, directory: Path, base, label: str):
    """A LoadedLM like the base one (same tokenizer, device and dtype), with its own engine."""
    import torch

    from workers.runtime.models import LoadedLM, engine_build

    started = time.monotonic()
    model = adapter_merged_model(directory, dtype=getattr(torch, base.dtype), device=base.device, weights=base.weights)
    seconds = time.monotonic() - started
    logger.info("loaded adapter %s merged into %s in %.2f s", label, base.version, seconds)
    return LoadedLM(
        model=model,
        tokenizer=base.tokenizer,
        device=base.device,
        dtype=base.dtype,
        version=f"{base.version}+{label.split('|')[0]}",
        load_seconds=seconds,
        weights=base.weights,
        engine=engine_build(model, base.tokenizer),
        lock=threading.Lock(),
        prompt_format=adapter_prompt_format(directory),
    )


def adapter_prompt_format(directory: Path) -> str:
    """The reply prompt an adapter was trained with: its training.json's ``params.prompt_format``
    ("opening" for adapters trained before there was a choice)."""
    import json

    try:
        params = json.loads((Path(directory) / "training.json").read_text()).get("params", {})
    except (OSError, ValueError):
        return "opening"
    return params.get("prompt_format") or "opening"


def adapters_cached() -> list[str]:
    return _cache.keys()


def adapters_clear() -> None:
    """Drop every cached adapter (tests)."""
    _cache.clear()
