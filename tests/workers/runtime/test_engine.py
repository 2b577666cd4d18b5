"""The engine's contract, run against every decoder installed on this machine with the shipped
SmolLM2: the transformers decoder always, llama.cpp's where llama-cpp-python is built
(bench/requirements.txt; skipped otherwise, with the reason). What a job relies on: streamed text
adds up to the result, finish reasons and token counts, a seed reproduces a sampled draft, stop
sequences, n candidates, cancellation, concurrent requests decoding as they would alone, a
prompt that starts like an earlier one (prefix cache) decoding as it would from scratch, and a
response format's grammar."""

import json

import pytest

from generation.lm import chat_input_ids, lm_source
from generation.structured import response_format_grammar
from workers.ml import llamacpp
from workers.ml.batching import BatchDecoder
from workers.ml.decoding import SamplingParams
from workers.ml.lm import eos_token_ids
from workers.runtime.engine import Engine

GREEDY = SamplingParams(max_new_tokens=16, temperature=0.0)
SYSTEM = "You are a helpful customer-support assistant for an outdoor-gear shop. Answer in one sentence."


def _decoder(kind, lm, prefix_cache_tokens=4096):
    common = {"eos_ids": eos_token_ids(lm.model, lm.tokenizer), "prefill_chunk": 64,
              "prefix_cache_tokens": prefix_cache_tokens}
    if kind == "transformers":
        return BatchDecoder(lm.model, lm.tokenizer, **common)
    if not llamacpp.available():
        pytest.skip("llama-cpp-python is not installed (bench/requirements.txt builds it)")
    directory, gguf = lm_source("smollm2")
    fast = llamacpp.LlamaCppDecoder(str(directory / gguf), lm.tokenizer, threads=2, max_sequences=8,
                                    context_tokens=4096, **common)
    if kind == "llamacpp":
        return fast
    return llamacpp.HandoffDecoder(fast, BatchDecoder(lm.model, lm.tokenizer, **common), fast_rows=1)


@pytest.fixture(scope="module", params=["transformers", "llamacpp", "handoff"])
def engine(request, smollm2):
    engine = Engine(_decoder(request.param, smollm2), max_rows=8, max_cached_tokens=4096)
    engine.lm, engine.kind = smollm2, request.param
    yield engine
    engine.close()


def _ids(lm, text):
    return chat_input_ids(lm.tokenizer, prompt=text, messages=[{"role": "system", "content": SYSTEM}])


def _run(engine, text, params):
    handle = engine.submit(_ids(engine.lm, text), params)
    completions = handle.result()
    deltas, tokens = handle.drain()
    return completions, deltas, tokens


def test_streamed_text_adds_up_to_the_result_with_its_finish_reason_and_token_count(engine):
    (completion,), deltas, tokens = _run(engine, "Where is my parcel?", GREEDY)
    assert deltas[0] == completion.text and tokens == completion.completion_tokens
    assert completion.finish_reason in ("stop", "length") and 0 < completion.completion_tokens <= 16
    assert completion.mean_logprob < 0
    (longer,), _, _ = _run(engine, "Where is my parcel?", SamplingParams(max_new_tokens=40, temperature=0.0))
    assert longer.text.startswith(completion.text)  # greedy: a longer budget continues the same text


def test_a_seed_reproduces_sampled_candidates_and_candidates_differ(engine):
    params = SamplingParams(max_new_tokens=24, temperature=1.0, top_p=0.95, seed=7, n=3)
    first, _, _ = _run(engine, "Can I return a tent I have used once?", params)
    again, _, _ = _run(engine, "Can I return a tent I have used once?", params)
    assert [c.text for c in first] == [c.text for c in again]
    assert len({c.text for c in first}) >= 2


def test_a_stop_sequence_ends_the_text_before_it(engine):
    (free,), _, _ = _run(engine, "Count from one to ten in words, separated by commas.",
                         SamplingParams(max_new_tokens=30, temperature=0.0))
    word = free.text.split(",")[1].strip() if "," in free.text else free.text.split()[1]
    (stopped,), _, _ = _run(engine, "Count from one to ten in words, separated by commas.",
                            SamplingParams(max_new_tokens=30, temperature=0.0, stop=(word,)))
    assert stopped.finish_reason == "stop" and word not in stopped.text
    assert free.text.startswith(stopped.text)


def test_cancelling_ends_a_request_and_frees_its_rows(engine):
    handle = engine.submit(_ids(engine.lm, "Write a long story about a mountain hike."),
                           SamplingParams(max_new_tokens=2000, temperature=0.8, seed=1))
    handle.wait(60, for_text=True)
    handle.cancel()
    (completion,) = handle.result()
    assert completion.finish_reason == "cancelled" and completion.completion_tokens < 2000
    assert engine.stats()["rows"] == 0 and engine.stats()["cached_tokens"] == 0


def test_concurrent_requests_decode_as_they_would_alone(engine):
    texts = ["Do you ship to Norway?", "My jacket's zip broke after a week, what can I do?", "Hi"]
    alone = [_run(engine, t, GREEDY)[0][0] for t in texts]
    first = engine.submit(_ids(engine.lm, texts[0]), GREEDY)
    first.wait(60, for_text=True)  # decoding already when the others come
    handles = [first, *(engine.submit(_ids(engine.lm, t), GREEDY) for t in texts[1:])]
    together = [h.result()[0] for h in handles]
    if engine.kind != "handoff":
        assert [c.text for c in together] == [c.text for c in alone]
        return
    # Alone, each ran on llama.cpp; together, the first started there and moved to transformers
    # when the others joined (the same row: its text so far kept), the others ran on transformers,
    # whose numbers differ from llama.cpp's in the last bits (tests/workers/ml/test_batching.py
    # checks that a moved row continues exactly).
    assert engine.decoder.handoffs >= 1 and not engine.decoder.fast.rows
    assert together[0].text.split()[:3] == alone[0].text.split()[:3]
    assert all(c.text.strip() and c.finish_reason in ("stop", "length") for c in together)


@pytest.mark.parametrize("kind", ["transformers", "llamacpp", "handoff"])
def test_a_prompt_that_starts_like_an_earlier_one_reuses_its_cache_and_decodes_the_same(smollm2, kind):
    cold = Engine(_decoder(kind, smollm2, prefix_cache_tokens=0), max_rows=4, max_cached_tokens=4096)
    warm = Engine(_decoder(kind, smollm2), max_rows=4, max_cached_tokens=4096)
    warm.submit(_ids(smollm2, "What are your opening hours?"), GREEDY).result()
    ids = _ids(smollm2, "How do I reset my password?")
    expected = cold.submit(ids, GREEDY).result()[0].text
    assert warm.submit(ids, GREEDY).result()[0].text == expected
    assert warm.stats()["prefix_hit_tokens"] >= len(_ids(smollm2, "")) - 8  # the system prompt at least
    cold.close()
    warm.close()


def test_a_response_format_gives_json_of_its_schema(engine):
    schema = {"type": "object", "properties": {"intent": {"enum": ["refund", "delivery", "other"]},
                                               "urgent": {"type": "boolean"}},
              "required": ["intent", "urgent"], "additionalProperties": False}
    grammar = response_format_grammar({"type": "json_schema", "json_schema": {"name": "t", "schema": schema}})
    completions, _, _ = _run(engine, "Classify: 'my refund never arrived, I need it today!'",
                             SamplingParams(max_new_tokens=40, temperature=0.7, seed=2, n=2, grammar=grammar))
    for completion in completions:
        value = json.loads(completion.text)
        assert value["intent"] in ("refund", "delivery", "other") and isinstance(value["urgent"], bool)


def test_the_llamacpp_engine_serves_with_transformers_where_llama_cpp_cannot(tiny_lm, settings, caplog):
    from workers.runtime.models import engine_build, lm_get

    settings.GENAI_ENGINE = "llamacpp"
    lm = lm_get(str(tiny_lm))
    engine = engine_build(lm.model, lm.tokenizer, gguf=None)  # a merged adapter, a test model: no GGUF
    assert isinstance(engine.decoder, BatchDecoder)
    assert "no GGUF file" in caplog.text
    engine.close()


def test_the_llamacpp_engine_decodes_the_base_model_with_llama_cpp_on_its_gguf(smollm2, settings):
    from workers.runtime.models import engine_build

    if not llamacpp.available():
        pytest.skip("llama-cpp-python is not installed (bench/requirements.txt builds it)")
    settings.GENAI_ENGINE, settings.GENAI_LLAMACPP_CONTEXT_TOKENS = "llamacpp", 2048
    directory, gguf = lm_source("smollm2")
    engine = engine_build(smollm2.model, smollm2.tokenizer, gguf=directory / gguf)
    assert isinstance(engine.decoder, llamacpp.HandoffDecoder)
    assert isinstance(engine.decoder.fast, llamacpp.LlamaCppDecoder) and engine.decoder.fast.context_tokens == 2048
    (completion,) = engine.submit(_ids(smollm2, "Hello!"), GREEDY).result()
    assert completion.text.strip() and engine.decoder.fast.prefix_hits == 0 < len(engine.decoder.fast.prefixes)
    engine.close()


def test_an_unknown_engine_setting_is_refused_by_name(tiny_lm, settings):
    from workers.runtime.device import DeviceSettingError
    from workers.runtime.models import engine_build, lm_get

    settings.GENAI_ENGINE = "vllm-on-cpu"
    lm = lm_get(str(tiny_lm))
    with pytest.raises(DeviceSettingError, match="GENAI_ENGINE='vllm-on-cpu' is not one of auto, batched"):
        engine_build(lm.model, lm.tokenizer)
