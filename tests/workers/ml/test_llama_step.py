"""The decoder's own Llama step and its prefix cache: both must leave the output what
transformers computes, on the tiny fp32 model (and the fused int4 projections on exact Q4 grids)."""

import random

import pytest
import torch
from torch import nn

from generation.lm import chat_input_ids
from workers.ml.batching import BatchDecoder, BatchRequest
from workers.ml.decoding import SamplingParams
from workers.ml.llama_step import Int8Head, KVCache, LlamaStep, _fused
from workers.ml.lm import eos_token_ids, generate
from workers.ml.quantized import Int4Linear, int4_available
from workers.runtime.models import lm_get

GREEDY = SamplingParams(max_new_tokens=16, temperature=0.0, repetition_penalty=1.2)
SYSTEM = "You answer customers of a shop that sells shoes, bags and coats, politely and briefly."
QUESTIONS = ["Where is my parcel?", "Can I return a coat I bought two months ago?", "Hi"]


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    return lm_get(str(tiny_lm))


def _ids(lm, question):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return chat_input_ids(lm.tokenizer, prompt=None, messages=messages)


def _decoder(lm, **kwargs):
    return BatchDecoder(lm.model, lm.tokenizer, eos_ids=eos_token_ids(lm.model, lm.tokenizer), **kwargs)


def _run(decoder, requests):
    for request in requests:  # one after another: each can reuse what the ones before left
        while not decoder.prefill_step(request):
            pass
        while request.rows and not request.finished:
            decoder.decode_step()
    return [request.completions()[0] for request in requests]


def _alone(lm, ids, params):
    return generate(lm.model, lm.tokenizer, torch.tensor([ids]), params)[0]


def test_the_fast_step_is_used_and_decodes_what_transformers_does(tiny):
    decoder = _decoder(tiny)
    assert isinstance(decoder.step, LlamaStep)
    fallback = _decoder(tiny, step=None)  # transformers' forward for every step
    requests = [BatchRequest(prompt_ids=_ids(tiny, q), params=GREEDY) for q in QUESTIONS]
    again = [BatchRequest(prompt_ids=_ids(tiny, q), params=GREEDY) for q in QUESTIONS]
    for fast, slow, question in zip(_run(decoder, requests), _run(fallback, again), QUESTIONS, strict=True):
        alone = _alone(tiny, _ids(tiny, question), GREEDY)
        assert (fast.text, fast.completion_tokens) == (alone.text, alone.completion_tokens)
        assert (slow.text, slow.finish_reason) == (alone.text, alone.finish_reason)


def test_a_prompt_sharing_a_prefix_reuses_its_cache_and_decodes_the_same(tiny):
    decoder = _decoder(tiny, prefix_cache_tokens=4096)
    requests = [BatchRequest(prompt_ids=_ids(tiny, q), params=GREEDY) for q in QUESTIONS]
    completions = _run(decoder, requests)
    shared = len(_ids(tiny, ""))  # about the system prompt and the template's tags
    assert decoder.prefix_hits >= (len(QUESTIONS) - 1) * (shared // 2)
    for completion, question in zip(completions, QUESTIONS, strict=True):
        assert completion.text == _alone(tiny, _ids(tiny, question), GREEDY).text
    # the very same prompt again: all but its last token come from the cache
    repeat = BatchRequest(prompt_ids=_ids(tiny, QUESTIONS[1]), params=GREEDY)
    hits = decoder.prefix_hits
    assert _run(decoder, [repeat])[0].text == completions[1].text
    assert decoder.prefix_hits - hits == len(repeat.prompt_ids) - 1


def test_the_prefix_cache_keeps_to_its_token_budget(tiny):
    budget = len(_ids(tiny, QUESTIONS[1])) + 4
    decoder = _decoder(tiny, prefix_cache_tokens=budget)
    _run(decoder, [BatchRequest(prompt_ids=_ids(tiny, q), params=GREEDY) for q in QUESTIONS])
    assert 0 < sum(len(entry.ids) for entry in decoder.prefixes) <= budget
    off = _decoder(tiny, prefix_cache_tokens=0)
    _run(off, [BatchRequest(prompt_ids=_ids(tiny, q), params=GREEDY) for q in QUESTIONS[:2]])
    assert off.prefixes == [] and off.prefix_hits == 0


@pytest.mark.skipif(not int4_available(), reason="this torch build has no CPU int4 kernel")
def test_fused_int4_projections_compute_what_the_separate_ones_do():
    from tests.workers.ml.test_quantized import _q4_linear

    linears = [_q4_linear(out_features=n, in_features=64, seed=i) for i, n in enumerate((128, 64, 64))]
    packed = [Int4Linear.from_linear(linear, dtype=torch.bfloat16) for linear in linears]
    fused = _fused(packed)
    x = torch.randn(3, 64).bfloat16()
    assert torch.equal(fused(x), torch.cat([layer(x) for layer in packed], dim=-1))
    # rows off the kernel's packing block (64 with AVX-512) do not concatenate: not fused
    assert _fused([Int4Linear.from_linear(_q4_linear(out_features=n, in_features=64), dtype=torch.bfloat16)
                   for n in (64, 32, 32)]) is None
    dense = _fused([nn.Linear(64, 8), nn.Linear(64, 4)])
    assert dense.weight.shape == (12, 64)
    assert _fused([packed[0], nn.Linear(64, 4)]) is None  # mixed kinds stay apart


def test_the_kv_cache_keeps_every_row_right_aligned_through_joins_leaves_and_cuts():
    """Random joins (shorter and longer than the batch, repeated rows), leaves from anywhere, new
    columns and cut leading padding, against each row's own keys and values kept apart; the
    whole cache is copied (re-allocated) only now and then, not at every join or leave."""
    rng, generator = random.Random(0), torch.Generator().manual_seed(0)
    layers, heads, dim = 2, 3, 4
    own: list[torch.Tensor] = []  # per live row: (2, layers, heads, its length, dim) keys and values
    cache, events, copies = None, 0, 0

    def join(length: int, copies: int) -> None:
        nonlocal cache
        kv = torch.randn(2, layers, 1, heads, length, dim, generator=generator)
        pairs = [(kv[0, i], kv[1, i]) for i in range(layers)]
        if cache is None:
            cache = KVCache.from_layers(pairs, copies=copies, grow=8)
        else:
            cache.add_rows(pairs, copies=copies)
        own.extend([kv[:, :, 0]] * copies)

    for _ in range(400):
        if cache is None or (len(own) < 8 and rng.random() < 0.4):
            join(rng.randint(1, 40), rng.choice((1, 1, 2)))
            events += 1
        elif rng.random() < 0.35:
            leaving = rng.sample(range(len(own)), rng.randint(1, min(3, len(own))))
            if len(leaving) == len(own):
                copies += cache.reallocations
                cache, own = None, []
                continue
            order = cache.remove_rows(leaving)
            own = [own[i] for i in order]
            events += 1
        cut = cache.length - max(row.shape[3] for row in own)
        if cut:
            cache.drop_leading(cut)
        cache.reserve(1)  # a decoding step: one more column for every row
        column = torch.randn(2, layers, len(own), heads, dim, generator=generator)
        keys, values = cache.live()
        keys[:, :, :, cache.length], values[:, :, :, cache.length] = column[0], column[1]
        cache.length += 1
        own = [torch.cat([row, column[:, :, r, :, None]], dim=3) for r, row in enumerate(own)]
        assert cache.rows == len(own)
        for index in range(layers):
            cached = cache.layer(index)
            for r, row in enumerate(own):
                for kv in (0, 1):
                    assert torch.equal(cached[kv][r, :, cache.length - row.shape[3]:], row[kv, index])
    copies += cache.reallocations if cache else 0
    assert events > 100 and copies < events / 4


@pytest.mark.skipif(not hasattr(torch.ops.aten, "_weight_int8pack_mm"), reason="this torch has no int8 CPU kernel")
def test_the_int8_output_layer_gives_the_dense_logits_where_decoding_picks():
    torch.manual_seed(0)
    head = nn.Linear(64, 1000, bias=False).to(torch.bfloat16).requires_grad_(False)
    assert Int8Head.build(nn.Linear(64, 1000, bias=False)) is None  # float32: the dense layer serves
    int8 = Int8Head.build(head)
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    dense, fast = head(x).float(), int8(x).float()
    assert torch.equal(fast.argmax(-1), dense.argmax(-1))
    top = dense.topk(10, dim=-1).indices  # what top-k / top-p sampling draws from
    torch.testing.assert_close(fast.gather(-1, top), dense.gather(-1, top), rtol=1e-2, atol=1e-2)
    assert (fast - dense).abs().max() < 0.1 * dense.std()  # the rest: close, not exact
