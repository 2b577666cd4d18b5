import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workers.runtime.device import DeviceSettingError, device_choose


def test_cpu_uses_the_configured_dtype():
    assert device_choose("cpu", cpu_dtype="float32").dtype == torch.float32
    assert device_choose("cpu", cpu_dtype="bfloat16").dtype == torch.bfloat16
    assert device_choose("cpu").device.type == "cpu"


def test_cpu_auto_dtype_follows_native_bf16_support():
    from workers.runtime.device import cpu_has_native_bf16

    want = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert device_choose("cpu", cpu_dtype="auto").dtype == want


def test_cpu_int4_weights_compute_in_bfloat16():
    device = device_choose("cpu", cpu_weights="int4")
    assert (device.weights, device.dtype) == ("int4", torch.bfloat16)
    assert device_choose("cpu", cpu_dtype="bfloat16", cpu_weights="int4").weights == "int4"
    with pytest.raises(DeviceSettingError, match="GENAI_CPU_WEIGHTS=int4 computes in bfloat16"):
        device_choose("cpu", cpu_dtype="float32", cpu_weights="int4")
    with pytest.raises(DeviceSettingError, match="GENAI_CPU_WEIGHTS='int8' is not one of int4, dense"):
        device_choose("cpu", cpu_weights="int8")


def test_auto_picks_cuda_with_bf16_when_present():
    device = device_choose("auto")
    if torch.cuda.is_available():
        assert device.device.type == "cuda" and device.dtype in (torch.bfloat16, torch.float16)
    else:
        assert device.device.type == "cpu"


@pytest.mark.parametrize(("setting", "dtype", "message"), [
    ("gpu", "float32", "GENAI_DEVICE='gpu' is not one of"),
    ("cpu", "int4", "GENAI_CPU_DTYPE='int4' is not one of"),
    ("cuda:7", "float32", "cuda"),
])
def test_bad_settings_are_named(setting, dtype, message):
    if setting.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(DeviceSettingError, match=message):
        device_choose(setting, cpu_dtype=dtype)


def test_worker_with_a_bad_device_setting_exits_with_a_clear_message(tmp_path):
    import os

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "genai_site.settings.test", "GENAI_DEVICE": "gpu"}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "genai_site", "worker", "-Q", "cpu", "-P", "solo", "-n", "bad@%h"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "GENAI_DEVICE='gpu' is not one of auto, cpu, cuda, cuda:N" in result.stderr


@pytest.mark.parametrize("native", [True, False])
def test_training_autocasts_to_bf16_only_where_the_cpu_multiplies_bf16_natively(monkeypatch, native):
    """The served LM's int4 kernel computes in bf16 on any CPU; training must not follow it onto a
    CPU that only emulates bf16 (AVX2 alone: a LoRA step was about 14x slower than in float32)."""
    from workers.runtime import device as device_module

    monkeypatch.setattr(device_module, "device_get", lambda: device_choose("cpu", cpu_weights="int4"))
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: native)
    assert device_module.device_amp_dtype() == ("bfloat16" if native else "")
    monkeypatch.setattr(device_module, "device_get", lambda: device_choose("cpu", cpu_dtype="float32"))
    assert device_module.device_amp_dtype() == ""


def test_batch_processes_take_dense_weights_where_the_cpu_has_no_native_bf16(settings, monkeypatch):
    from workers.runtime import device as device_module

    settings.GENAI_CPU_WEIGHTS = "int4"
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    assert device_module.batch_cpu_weights("auto") == "dense" and settings.GENAI_CPU_WEIGHTS == "dense"
    settings.GENAI_CPU_WEIGHTS = "int4"
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert device_module.batch_cpu_weights("auto") == "int4"
    assert device_module.batch_cpu_weights("dense") == "dense"
    with pytest.raises(device_module.DeviceSettingError):
        device_module.batch_cpu_weights("int8")
    device_module.device_get.cache_clear()
