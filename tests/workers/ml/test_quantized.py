"""Int4 serving weights: exact on Q4 grids, untouched elsewhere, and SmolLM2 served int4 keeps
its quality (one test on the shipped model)."""

import math

import pytest
import torch
from torch import nn

from workers.ml.quantized import Int4Linear, int4_available, linears_pack_int4, q4_grid

pytestmark = pytest.mark.skipif(not int4_available(), reason="this torch build has no CPU int4 kernel")


def _q4_linear(out_features=48, in_features=64, *, bias=False, seed=0) -> nn.Linear:
    """A Linear whose weights are what a dequantised Q4_1 tensor looks like: d * q + m per block of 32."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (out_features, in_features // 32, 32), generator=g).float()
    q[..., 0], q[..., 1] = 0, 15  # ggml's Q4_1 maps each block's min to 0 and max to 15
    d = torch.rand(out_features, in_features // 32, 1, generator=g) * 0.01 + 0.001
    m = -8 * d + torch.randn(out_features, in_features // 32, 1, generator=g) * 0.002
    linear = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        linear.weight.copy_((d * q + m).reshape(out_features, in_features))
    return linear


def test_a_q4_grid_is_found_exactly_and_other_weights_are_refused():
    linear = _q4_linear()
    q, scale, minimum = q4_grid(linear.weight)
    rebuilt = (q.float().reshape(48, 2, 32) * scale[..., None] + minimum[..., None]).reshape(48, 64)
    assert torch.allclose(rebuilt, linear.weight, atol=1e-7)
    assert q4_grid(nn.Linear(64, 48).weight) is None  # a float checkpoint's weights
    assert q4_grid(nn.Linear(40, 8).weight) is None  # not a whole number of groups


@pytest.mark.parametrize("bias", [False, True])
def test_packed_layer_computes_what_the_dense_one_does(bias):
    linear = _q4_linear(bias=bias)
    packed = Int4Linear.from_linear(linear, dtype=torch.bfloat16)
    x = torch.randn(3, 5, 64)
    want = linear(x)
    got = packed(x.bfloat16()).float()
    assert got.shape == (3, 5, 48)
    # as close as a dense bfloat16 layer gets
    dense_bf16 = nn.functional.linear(x.bfloat16(), linear.weight.bfloat16(), None if linear.bias is None else linear.bias.bfloat16())
    assert (got - want).norm() <= 1.5 * (dense_bf16.float() - want).norm() + 1e-6


def test_pack_replaces_only_the_layers_on_a_grid():
    model = nn.Sequential(_q4_linear(64, 64, seed=1), nn.ReLU(), nn.Linear(64, 64), _q4_linear(48, 64, seed=2))
    report = linears_pack_int4(model)
    assert report.packed == 2 and report.dense == ("2",)
    assert isinstance(model[0], Int4Linear) and isinstance(model[2], nn.Linear) and isinstance(model[3], Int4Linear)
    assert report.bytes_after < report.bytes_before / 5  # float32 -> 4 bits plus a scale and zero per 32


def _perplexity(lm, texts):
    nll, count = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = lm.tokenizer(text, return_tensors="pt").input_ids
            logits = lm.model(input_ids=ids).logits[0, :-1].float()
            nll += float(nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    return math.exp(nll / count)


def test_smollm2_served_int4_keeps_its_quality_and_loads_packed_from_its_cache(smollm2):
    """The shipped model's projections are Q4_1 in the GGUF: packed exactly, the Q8_0 embedding
    and the lm_head tied to it stay dense; perplexity as the dense float32 model's. The packed
    model is cached: the next load reads it back and computes the same."""
    import shutil

    from generation.lm import lm_prepare
    from workers.runtime.device import Device
    from workers.runtime.models import LoadedLM, _int4_cache_dir, lm_load

    directory = lm_prepare("smollm2")
    device = Device(device=torch.device("cpu"), dtype=torch.bfloat16, weights="int4")
    shutil.rmtree(_int4_cache_dir(directory), ignore_errors=True)
    model = lm_load(directory, device)  # float32, packed, cached
    cached = lm_load(directory, device)
    assert _int4_cache_dir(directory).is_dir()
    ids = smollm2.tokenizer("Where is my parcel?", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, cached(input_ids=ids).logits)
    assert cached.model.rotary_emb.inv_freq.dtype == torch.float32
    assert cached.lm_head.weight is cached.model.embed_tokens.weight
    packed = [m for m in model.modules() if isinstance(m, Int4Linear)]
    assert len(packed) == 7 * model.config.num_hidden_layers
    assert isinstance(model.lm_head, nn.Linear) and model.lm_head.weight.dtype == torch.bfloat16
    int4 = LoadedLM(model=model, tokenizer=smollm2.tokenizer, device="cpu", dtype="bfloat16", version="int4",
                    load_seconds=0.0, weights="int4", engine=None, lock=None)
    texts = [
        "Thank you for contacting us. I understand that your order has not arrived yet, and I am sorry for the delay.",
        "To reset your password, open the account settings page and choose the option to send a reset link.",
    ]
    dense = _perplexity(smollm2, texts)  # float32, dense: the reference
    assert abs(_perplexity(int4, texts) / dense - 1) < 0.02
