"""The per-process cache of loaded language models (and the engine that serves each).

Where the model's files are and its tokenizer: ``generation.lm`` (the web uses them too). Each
worker process loads a model once, on its first job (or at start, see ``workers.signals``), on
the device chosen at start.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from generation.lm import READY_MARKER, lm_prepare, lm_source, tokenizer_get
from workers.ml.building import model_building

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedLM:
    model: object  # transformers PreTrainedModel
    tokenizer: object
    device: str
    dtype: str
    version: str
    load_seconds: float
    weights: str  # "int4" (Q4 projections packed, workers.ml.quantized) or "dense"
    # GENAI_ENGINE=batched: the continuous-batching engine serving all of the process's jobs.
    # sequential: one transformers generate() at a time, under ``lock``.
    engine: object | None
    lock: threading.Lock
    # The reply prompt the weights were trained with (workers.runners.reply.PROMPT_FORMATS): the
    # base model's is "opening"; an adapter's comes from its training.json.
    prompt_format: str = "opening"


_loaded: dict[str, LoadedLM] = {}
_load_lock = threading.Lock()


def lm_get(name: str | None = None) -> LoadedLM:
    """The process's loaded LM: loaded on first use, on the device chosen at worker start."""
    from generation import metrics
    from workers.runtime.device import device_get

    name = name or settings.GENAI_LM_MODEL
    if name in _loaded:
        return _loaded[name]
    with _load_lock:
        if name in _loaded:
            return _loaded[name]
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        started = time.monotonic()
        directory = lm_prepare(name)
        device = device_get()
        model = lm_load(directory, device)
        tokenizer = tokenizer_get(name)
        engine = engine_build(model, tokenizer, gguf=_gguf_of(name))
        seconds = time.monotonic() - started
        metrics.model_loaded(model=Path(directory).name, seconds=seconds)
        logger.info(
            "loaded %s on %s (%s, %s weights) in %.2f s",
            directory.name, device.device, device.dtype_name, device.weights, seconds,
        )
        _loaded[name] = LoadedLM(
            model=model,
            tokenizer=tokenizer,
            device=str(device.device),
            dtype=device.dtype_name,
            version=directory.name,
            load_seconds=seconds,
            weights=device.weights,
            engine=engine,
            lock=threading.Lock(),
        )
        return _loaded[name]


def _gguf_of(name: str) -> Path | None:
    """The GGUF file the model ``name`` was converted from (SmolLM2's shipped Q4_1), if it has one."""
    directory, gguf = lm_source(name)
    return directory / gguf if gguf else None


@model_building
def lm_load(directory: Path, device):
    """The model in ``directory`` on ``device``: dense in its dtype, or with int4 weights
    (``workers.ml.quantized``; the packed model is cached beside the dense one)."""
    from transformers import AutoModelForCausalLM

    if device.weights != "int4":
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=device.dtype, attn_implementation="sdpa")
        return model.to(device.device).eval()
    cache = _int4_cache_dir(directory)
    if (cache / READY_MARKER).exists():
        try:
            return _int4_cached_load(directory, cache, device.dtype)
        except Exception:  # noqa: BLE001 - a stale or damaged cache is rebuilt, not fatal
            logger.warning("int4 cache %s unusable; packing again", cache, exc_info=True)
    return _int4_pack_and_cache(directory, cache, device.dtype)


def int4_cache_prepare(directory: Path) -> Path | None:
    """Pack and cache ``directory``'s model if this process's device serves int4 weights and the
    cache is missing (``make run`` does it before the workers start); the cache's path, else None."""
    from workers.runtime.device import device_get

    device = device_get()
    if device.weights != "int4":
        return None
    cache = _int4_cache_dir(directory)
    if not (cache / READY_MARKER).exists():
        _int4_pack_and_cache(directory, cache, device.dtype)
    return cache


def _int4_cache_dir(directory: Path) -> Path:
    """Where the packed model of ``directory`` is cached: the packing layout is the torch build's
    and may depend on the CPU's instruction set, so both name it."""
    import torch

    tag = f"torch{torch.__version__}-{torch.backends.cpu.get_cpu_capability()}".replace("+", "_").lower()
    return directory.with_name(f"{directory.name}-int4-{tag}")


@model_building
def _int4_pack_and_cache(directory: Path, cache: Path, dtype):
    """Load in float32 (so the Q4 grids are found exactly), pack, cast the rest to ``dtype``, and
    write the packed model to ``cache`` for the next load (the same file lock as ``lm_prepare``)."""
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM

    from workers.ml.quantized import GROUP_SIZE, linears_pack_int4

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="sdpa")
    report = linears_pack_int4(model, dtype=dtype)
    for parameter in model.parameters():  # not model.to(dtype): the rotary frequencies stay float32
        parameter.data = parameter.data.to(dtype)
    logger.info(
        "int4 weights: %d projections packed (%.0f MB of float32 -> %.0f MB), left dense: %s",
        report.packed, report.bytes_before / 1e6, report.bytes_after / 1e6, ", ".join(report.dense) or "none",
    )
    lock_path = cache.with_name(cache.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / READY_MARKER).exists():
            tmp = cache.with_name(cache.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            save_model(model, str(tmp / "model.safetensors"),
                       metadata={"packed": ",".join(report.names), "group_size": str(GROUP_SIZE), "dtype": str(dtype)})
            (tmp / READY_MARKER).write_text(f"int4 of {directory.name}")
            shutil.rmtree(cache, ignore_errors=True)
            tmp.rename(cache)
    return model.eval()


@model_building
def _int4_cached_load(directory: Path, cache: Path, dtype):
    """The packed model from ``cache``: built on the meta device, the packed layers put in place,
    every tensor assigned from the file (no float32 copy, no packing)."""
    import torch
    from accelerate import init_empty_weights
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from workers.ml.quantized import linears_replace_empty

    path = cache / "model.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    if meta.get("dtype") != str(dtype):
        raise ValueError(f"cached in {meta.get('dtype')}, wanted {dtype}")
    config = AutoConfig.from_pretrained(directory)
    with init_empty_weights():  # parameters on meta (assigned from the file, in its dtypes); buffers real
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    linears_replace_empty(model, [n for n in meta["packed"].split(",") if n], dtype=dtype,
                          group_size=int(meta["group_size"]))
    state = load_file(str(path))
    if config.tie_word_embeddings:  # the file holds one name of the pair
        state.setdefault("lm_head.weight", state.get("model.embed_tokens.weight"))
        state.setdefault("model.embed_tokens.weight", state["lm_head.weight"])
    result = model.load_state_dict(state, strict=False, assign=True)
    if result.unexpected_keys or result.missing_keys:
        raise ValueError(f"missing {result.missing_keys}, unexpected {result.unexpected_keys}")
    model.tie_weights()
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ValueError("tensors left on the meta device")
    return model.eval()


ENGINES = ("auto", "batched", "llamacpp", "sequential")


def engine_build(model, tokenizer, *, gguf: Path | None = None):
    """The continuous-batching engine for ``model`` (GENAI_ENGINE=batched, llamacpp or auto), else
    None. ``llamacpp`` adds llama.cpp on ``gguf`` (the base model's own file) where
    llama-cpp-python is installed and the model runs on the CPU: it decodes while the engine has
    at most GENAI_LLAMACPP_MAX_ROWS rows (``workers.ml.llamacpp.HandoffDecoder``); a model without
    a GGUF (a merged adapter, a test model) or a machine without llama.cpp gets transformers alone
    (``auto``: silently)."""
    from workers.runtime.device import DeviceSettingError

    if settings.GENAI_ENGINE not in ENGINES:
        raise DeviceSettingError(f"GENAI_ENGINE={settings.GENAI_ENGINE!r} is not one of {', '.join(ENGINES)}")
    if settings.GENAI_ENGINE == "sequential":
        return None
    from generation import metrics
    from workers.ml.batching import BatchDecoder
    from workers.ml.lm import eos_token_ids
    from workers.runtime.engine import Engine

    eos_ids = eos_token_ids(model, tokenizer)
    common = {"eos_ids": eos_ids, "prefill_chunk": settings.GENAI_ENGINE_PREFILL_CHUNK,
              "prefix_cache_tokens": settings.GENAI_ENGINE_PREFIX_CACHE_TOKENS}
    max_rows, max_cached_tokens = settings.GENAI_ENGINE_MAX_ROWS, settings.GENAI_ENGINE_MAX_CACHED_TOKENS
    decoder, name = BatchDecoder(model, tokenizer, **common), "batched"
    if settings.GENAI_ENGINE in ("auto", "llamacpp") and (fast := _llamacpp_decoder(model, tokenizer, gguf, common)):
        from workers.ml.llamacpp import HandoffDecoder

        decoder, name = HandoffDecoder(fast, decoder, fast_rows=settings.GENAI_LLAMACPP_MAX_ROWS), "llamacpp"
        if settings.GENAI_LLAMACPP_MAX_ROWS >= max_rows:  # llama.cpp serves everything: its cells bound admission
            max_cached_tokens = min(max_cached_tokens, fast.context_tokens)
    return Engine(
        decoder,
        name=name,
        max_rows=max_rows,
        max_cached_tokens=max_cached_tokens,
        on_step=lambda seconds, rows, waiting: metrics.engine_stepped(seconds=seconds, rows=rows, waiting=waiting),
    )


def engine_name(lm: LoadedLM) -> str:
    """What serves ``lm``'s jobs (a job's ``usage.engine``): batched, llamacpp or sequential."""
    return lm.engine.name if lm.engine is not None else "sequential"


def _llamacpp_decoder(model, tokenizer, gguf: Path | None, common: dict):
    """A ``LlamaCppDecoder`` on ``gguf``, or None (with the reason logged) where it cannot serve."""
    from workers.ml import llamacpp

    reason = None
    if gguf is None:
        reason = "the model has no GGUF file (a merged adapter or a test model)"
    elif next(model.parameters()).device.type != "cpu":
        reason = "the model runs on a GPU (this llama.cpp build is the CPU one)"
    elif not llamacpp.available():
        reason = "llama-cpp-python is not installed (bench/requirements.txt builds it)"
    if reason:
        logger.log(logging.WARNING if settings.GENAI_ENGINE == "llamacpp" else logging.INFO,
                   "GENAI_ENGINE=%s: serving %s with the transformers decoder alone: %s", settings.GENAI_ENGINE,
                   getattr(model.config, "name_or_path", "the model"), reason)
        return None
    return llamacpp.LlamaCppDecoder(
        str(gguf), tokenizer, threads=settings.GENAI_TORCH_THREADS or None,
        max_sequences=min(settings.GENAI_LLAMACPP_MAX_ROWS, settings.GENAI_ENGINE_MAX_ROWS), context_tokens=settings.GENAI_LLAMACPP_CONTEXT_TOKENS,
        **common,
    )


def tiny_lm_build(target: Path, *, seed: int = 0) -> Path:
    """A randomly initialised SmolLM2-shaped model with the real SmolLM2 tokenizer, for fast
    tests of everything around the model (built once, then reused)."""
    if (target / READY_MARKER).exists():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from workers.ml.lm import tiny_llama_config

    directory, gguf = lm_source("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf)
    torch.manual_seed(seed)
    config = tiny_llama_config(
        vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id
    )
    model = LlamaForCausalLM(config)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / READY_MARKER).write_text("tiny random llama")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
