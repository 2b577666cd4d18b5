import torch

from workers.runtime.device import device_choose


def test_cpu_uses_float32():
    device = device_choose("cpu")
    assert (device.device.type, device.dtype) == ("cpu", torch.float32)


def test_auto_picks_cuda_with_bf16_when_present():
    device = device_choose("auto")
    if torch.cuda.is_available():
        assert device.device.type == "cuda" and device.dtype in (torch.bfloat16, torch.float16)
    else:
        assert device.device.type == "cpu"
