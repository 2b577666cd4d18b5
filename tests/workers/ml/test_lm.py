"""Generation behaviour on the tiny random model (fast), and on the shipped SmolLM2 (one test)."""

import pytest
import torch

from generation.lm import chat_input_ids
from workers.ml.lm import SamplingParams, generate
from workers.runtime.models import lm_get


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    return lm_get(str(tiny_lm))


def _ids(lm, text="The weather today"):
    return torch.tensor([chat_input_ids(lm.tokenizer, prompt=text, messages=None)])


def _run(lm, **params):
    deltas: dict[int, list[str]] = {}

    def on_text(chunk, tokens):
        for index, text in chunk.items():
            deltas.setdefault(index, []).append(text)

    completions = generate(lm.model, lm.tokenizer, _ids(lm), SamplingParams(**params), on_text=on_text)
    return completions, {i: "".join(parts) for i, parts in deltas.items()}


def test_n_candidates_stream_exactly_their_final_text(tiny):
    completions, streamed = _run(tiny, n=3, max_new_tokens=10, seed=1, temperature=1.0)
    assert len(completions) == 3
    for index, completion in enumerate(completions):
        assert streamed.get(index, "") == completion.text
        assert completion.finish_reason in {"length", "stop"}
        assert completion.mean_logprob is not None and completion.mean_logprob < 0


def test_max_new_tokens_ends_with_finish_reason_length(tiny):
    (completion,), _ = _run(tiny, max_new_tokens=5, temperature=0.0)
    if completion.finish_reason == "length":
        assert completion.completion_tokens == 5
    else:  # a random model may emit end-of-sequence first
        assert completion.completion_tokens < 5


def test_same_seed_same_text_and_other_seed_differs(tiny):
    a, _ = _run(tiny, n=2, max_new_tokens=12, seed=7, temperature=1.0, top_k=0, top_p=1.0)
    b, _ = _run(tiny, n=2, max_new_tokens=12, seed=7, temperature=1.0, top_k=0, top_p=1.0)
    c, _ = _run(tiny, n=2, max_new_tokens=12, seed=8, temperature=1.0, top_k=0, top_p=1.0)
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]


def test_stop_sequence_cuts_the_text_and_is_never_streamed(tiny):
    (free,), _ = _run(tiny, max_new_tokens=30, seed=11, temperature=1.0, top_k=0, top_p=1.0)
    assert len(free.text) > 6
    stop = free.text[len(free.text) // 2:][:3]
    (cut,), streamed = _run(tiny, max_new_tokens=30, seed=11, temperature=1.0, top_k=0, top_p=1.0, stop=(stop,))
    assert cut.finish_reason == "stop"
    assert cut.text == free.text[: free.text.index(stop)]
    assert stop not in streamed.get(0, "")


def test_should_stop_cancels_between_tokens(tiny):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 3

    (completion,) = generate(
        tiny.model, tiny.tokenizer, _ids(tiny), SamplingParams(max_new_tokens=50, temperature=0.0),
        should_stop=should_stop,
    )
    assert completion.finish_reason == "cancelled"
    assert completion.completion_tokens <= 4


@pytest.mark.slow
def test_smollm2_answers_a_question(smollm2):
    ids = torch.tensor([chat_input_ids(
        smollm2.tokenizer, prompt=None, messages=[{"role": "user", "content": "What is the capital of France?"}]
    )])
    (answer,) = generate(smollm2.model, smollm2.tokenizer, ids, SamplingParams(max_new_tokens=40, temperature=0.0))
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop"  # it ended with its end-of-turn token, not the length cap
    assert smollm2.device == "cpu" or smollm2.dtype == "bfloat16"


@pytest.mark.slow
def test_smollm2_in_bfloat16_the_default_cpu_serving_dtype_still_answers(smollm2):
    import copy

    model = copy.deepcopy(smollm2.model).to(torch.bfloat16)
    ids = torch.tensor([chat_input_ids(
        smollm2.tokenizer, prompt=None, messages=[{"role": "user", "content": "What is the capital of France?"}]
    )])
    (answer,) = generate(model, smollm2.tokenizer, ids, SamplingParams(max_new_tokens=40, temperature=0.0))
    assert "Paris" in answer.text and answer.finish_reason == "stop"
