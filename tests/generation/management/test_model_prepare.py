"""model_prepare (run by make run before the workers start) readies the model's files: the
converted safetensors and, where workers serve int4 weights, the packed cache."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from generation.lm import lm_prepare
from workers.ml.quantized import int4_available
from workers.runtime.device import device_get
from workers.runtime.models import _int4_cache_dir


def _prepare(**overrides) -> str:
    out = StringIO()
    device_get.cache_clear()
    try:
        with override_settings(**overrides):
            call_command("model_prepare", stdout=out)
    finally:
        device_get.cache_clear()
    return out.getvalue()


def test_dense_workers_get_the_converted_model_only(tiny_lm):
    output = _prepare(GENAI_CPU_WEIGHTS="dense")
    assert "ready in" in output and "int4" not in output


def test_int4_workers_get_the_packed_cache_too(tiny_lm, settings):
    import shutil

    if not int4_available():
        pytest.skip("this torch build has no CPU int4 kernel")
    cache = _int4_cache_dir(lm_prepare(settings.GENAI_LM_MODEL))
    shutil.rmtree(cache, ignore_errors=True)
    output = _prepare(GENAI_CPU_WEIGHTS="int4", GENAI_CPU_DTYPE="auto", GENAI_DEVICE="cpu")
    assert f"int4 weights ready in {cache}" in output
    assert (cache / "model.safetensors").is_file()
