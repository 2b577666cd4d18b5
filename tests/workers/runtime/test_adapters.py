"""LoRA adapters at serving time (tiny fp32 model): by name through the engine, the same greedy
text as peft's own generate; the base model untouched; a promoted adapter picked up by the next
job without a restart; the cache bounded."""

import shutil
import time

import pytest
import torch
from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.lm import chat_input_ids
from generation.runner import NullContext
from generation.services.model_versions import (
    model_version_promote,
    model_version_register,
)
from workers.ml.decoding import SamplingParams
from workers.runtime.adapters import adapters_cached, adapters_clear, lm_for
from workers.runtime.completions import completions_run
from workers.runtime.models import lm_get

GREEDY = SamplingParams(max_new_tokens=16, temperature=0.0, repetition_penalty=1.0)
MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture(scope="module")
def adapter_files(tiny_lm, tmp_path_factory):
    """A LoRA adapter with random (non-zero) weights on the tiny model, saved like training saves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    path = tmp_path_factory.mktemp("adapter") / "files"
    model.save_pretrained(path)
    return path


@pytest.fixture
def register(db, adapter_files):
    adapters_clear()

    def make(name: str, *, version: int = 1, purpose: str = "reply"):
        target = settings.GENAI_MODEL_STORE_DIR / "lm_adapter" / name / f"v{version}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(adapter_files, target)
        return model_version_register(family="lm_adapter", name=name, version=version, purpose=purpose,
                                      artifact_path=target, metrics={"validation_loss_after": 1.0})

    yield make
    adapters_clear()


def _peft_greedy(tiny_lm, adapter_dir) -> str:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    tokenizer = lm_get().tokenizer
    ids = torch.tensor([chat_input_ids(tokenizer, prompt=None, messages=MESSAGES)])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False)
    # The engine's text holds back an unfinished UTF-8 character at the end; so does this.
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).rstrip("\ufffd")


def _engine_greedy(lm) -> str:
    ids = chat_input_ids(lm.tokenizer, prompt=None, messages=MESSAGES)
    (completion,) = completions_run(lm, ids, GREEDY, NullContext())
    return completion.text


def test_adapter_by_name_on_the_engine_equals_peft_generate(register, tiny_lm, adapter_files):
    register("support-tone")
    base = lm_get()
    adapted = lm_for("support-tone")
    assert adapted is not base and adapted.engine is not None and adapted.engine is not base.engine
    assert adapted.version.endswith("+support-tone@1")
    assert lm_for("support-tone@1") is adapted  # one merged copy per name@version
    text = _engine_greedy(adapted)
    assert text == _peft_greedy(tiny_lm, adapter_files)
    assert text != _engine_greedy(base)  # the adapter changes the output ...
    # ... and the base model is untouched by it: "base" and the base's name both give the base.
    assert lm_for("base") is base and lm_for(None) is base
    assert base.model.model.layers[0].self_attn.q_proj.__class__.__name__ == "Linear"


def test_unknown_model_is_a_clear_job_error(register):
    with pytest.raises(PermanentJobError, match="nope"):
        lm_for("nope")
    register("known")
    with pytest.raises(PermanentJobError, match="known@7"):
        lm_for("known@7")


def test_promoted_adapter_is_used_by_the_next_job_without_restart(register, make_user, settings):
    reviewer = make_user("reviewer")
    first = register("reply-lora", version=1)
    assert lm_for(None, purpose="reply") is lm_get()  # registered, not promoted: the base
    model_version_promote(version=first, user=reviewer)
    v1 = lm_for(None, purpose="reply")
    assert v1.version.endswith("+reply-lora@1")
    assert lm_for(None, purpose="copy") is lm_get()  # another purpose keeps the base
    assert lm_for("base", purpose="reply") is lm_get()  # "base" forces the base

    settings.GENAI_ADAPTER_CACHE_SIZE = 1
    second = register("reply-lora", version=2)
    model_version_promote(version=second, user=reviewer)
    v2 = lm_for(None, purpose="reply")
    assert v2.version.endswith("+reply-lora@2")
    assert len(adapters_cached()) == 1  # v1 evicted: its engine ends its thread, its model is freed
    deadline = time.monotonic() + 5
    while v1.engine._thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert v1.engine._thread is None
    # A request that still reaches the evicted engine is served, not stranded.
    assert _engine_greedy(v1) == _engine_greedy(v2)


def test_copy_jobs_write_with_the_promoted_copy_adapter(register, make_user):
    from workers.runners.copy import copy_run

    params = {"attributes": {"name": "Metro Sling", "brand": "Urbano", "colour": "black"}, "tone": "neutral",
              "length": "short", "n": 1, "segments": [], "max_regenerations": 0}
    assert "+" not in copy_run(params=dict(params), ctx=NullContext()).model_version  # the base model
    model_version_promote(version=register("copy-lora", purpose="copy"), user=make_user("reviewer"))
    assert copy_run(params=dict(params), ctx=NullContext()).model_version.endswith("+copy-lora@1")
    based = copy_run(params={**params, "model": "base"}, ctx=NullContext())
    assert "+" not in based.model_version
