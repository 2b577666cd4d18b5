"""The continuous-batching decoder and engine on the tiny fp32 model: batching must not change
greedy output, and every per-request control must still hold inside a batch."""

import pytest
import torch

from generation.lm import chat_input_ids
from workers.ml.batching import BatchDecoder, BatchRequest
from workers.ml.decoding import SamplingParams
from workers.ml.lm import eos_token_ids, generate
from workers.runtime.engine import Engine, GenerationHandle
from workers.runtime.models import lm_get

PROMPTS = ["The weather today", "Once upon a time in a land far, far away there lived", "Hi"]


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    return lm_get(str(tiny_lm))


def _ids(lm, text):
    return chat_input_ids(lm.tokenizer, prompt=text, messages=None)


def _decoder(lm, prefill_chunk=256):
    return BatchDecoder(lm.model, lm.tokenizer, eos_ids=eos_token_ids(lm.model, lm.tokenizer), prefill_chunk=prefill_chunk)


def _engine(lm, *, max_rows, prefill_chunk):
    return Engine(_decoder(lm, prefill_chunk), max_rows=max_rows, max_cached_tokens=10_000)


def _drive(decoder, requests, *, join_every=0):
    """Prefill one chunk and decode one step per iteration; a request joins every
    ``join_every`` steps (0: as soon as possible)."""
    pending, step = list(requests), 0
    while pending or decoder.rows:
        if pending and (not join_every or step % join_every == 0 or not decoder.rows):
            if decoder.prefill_step(pending[0]):
                pending.pop(0)
        if decoder.rows:
            decoder.decode_step()
        step += 1
    return [r.completions() for r in requests]


def _alone(lm, text, params):
    return generate(lm.model, lm.tokenizer, torch.tensor([_ids(lm, text)]), params)


GREEDY = SamplingParams(max_new_tokens=20, temperature=0.0, repetition_penalty=1.0)


def test_batched_greedy_equals_unbatched_token_for_token(tiny):
    requests = [BatchRequest(prompt_ids=_ids(tiny, p), params=GREEDY) for p in PROMPTS]
    batched = _drive(_decoder(tiny), requests)
    for prompt, (completion,) in zip(PROMPTS, batched, strict=True):
        (alone,) = _alone(tiny, prompt, GREEDY)
        assert (completion.text, completion.completion_tokens) == (alone.text, alone.completion_tokens)
        assert completion.finish_reason == alone.finish_reason


def test_requests_joining_a_running_batch_and_chunked_prefill_change_nothing(tiny):
    requests = [BatchRequest(prompt_ids=_ids(tiny, p), params=GREEDY) for p in PROMPTS]
    decoder = _decoder(tiny, prefill_chunk=3)  # long prompts take several chunks between steps
    joined = _drive(decoder, requests, join_every=5)
    for prompt, (completion,) in zip(PROMPTS, joined, strict=True):
        assert completion.text == _alone(tiny, prompt, GREEDY)[0].text
    assert decoder.cache is None and decoder.rows == []  # everything left the batch


def test_repetition_penalty_matches_transformers(tiny):
    params = SamplingParams(max_new_tokens=15, temperature=0.0, repetition_penalty=1.3)
    (batched,) = _drive(_decoder(tiny), [BatchRequest(prompt_ids=_ids(tiny, PROMPTS[0]), params=params)])
    assert batched[0].text == _alone(tiny, PROMPTS[0], params)[0].text


def test_a_penalty_over_generated_tokens_only_matches_transformers_and_spares_the_prompt(tiny):
    """Copy repeats the prompt's attribute values: the penalty may count only what was generated."""
    generated_only = SamplingParams(max_new_tokens=15, temperature=0.0, repetition_penalty=3.0, penalise_prompt=False)
    with_prompt = SamplingParams(max_new_tokens=15, temperature=0.0, repetition_penalty=3.0)
    (batched,) = _drive(_decoder(tiny), [BatchRequest(prompt_ids=_ids(tiny, PROMPTS[1]), params=generated_only)])
    assert batched[0].text == _alone(tiny, PROMPTS[1], generated_only)[0].text
    # what the penalty counts after the first token: the prompt and that token, or that token alone
    prompt = _ids(tiny, PROMPTS[1])
    for params, counted in ((with_prompt, len(prompt) + 1), (generated_only, 1)):
        decoder = _decoder(tiny)
        assert decoder.prefill_step(BatchRequest(prompt_ids=prompt, params=params))
        assert len(decoder.rows[0].seen) == counted

    from workers.ml.lm import _GeneratedRepetitionPenalty

    scores = torch.tensor([[2.0, 2.0, -2.0, 2.0]])
    penalised = _GeneratedRepetitionPenalty(2.0, prompt_length=2)(torch.tensor([[0, 2, 1, 2]]), scores)
    assert penalised.tolist() == [[2.0, 1.0, -4.0, 2.0]]  # token 0 only in the prompt: untouched


def test_n_seed_stop_and_max_tokens_inside_a_batch(tiny):
    sampled = SamplingParams(max_new_tokens=12, temperature=1.0, top_k=0, top_p=1.0, seed=5, n=3)
    first = _drive(_decoder(tiny), [BatchRequest(prompt_ids=_ids(tiny, PROMPTS[0]), params=sampled)])[0]
    again = _drive(_decoder(tiny), [BatchRequest(prompt_ids=_ids(tiny, PROMPTS[0]), params=sampled)])[0]
    assert len(first) == 3
    assert [c.text for c in first] == [c.text for c in again]  # same seed, run alone: same text
    assert len({c.text for c in first}) > 1  # candidates differ from each other
    assert all(c.finish_reason == "length" and c.completion_tokens == 12 for c in first if c.finish_reason != "stop")

    text = first[0].text
    stop = text[len(text) // 2:][:2]
    cut_params = SamplingParams(**{**sampled.__dict__, "stop": (stop,), "n": 1})
    other = BatchRequest(prompt_ids=_ids(tiny, PROMPTS[1]), params=GREEDY)
    cut, _ = _drive(_decoder(tiny), [BatchRequest(prompt_ids=_ids(tiny, PROMPTS[0]), params=cut_params), other])
    assert cut[0].finish_reason == "stop"
    assert cut[0].text == text[: text.index(stop)]


def test_cached_tokens_count_the_cache_buffers_spare_room_not_only_the_live_rows(tiny):
    """The engine's cache budget bounds memory: the buffers keep spare row slots and columns."""
    decoder = _decoder(tiny)
    requests = [BatchRequest(prompt_ids=_ids(tiny, p), params=GREEDY) for p in PROMPTS[:3]]
    for request in requests:
        while not decoder.prefill_step(request):
            pass
    decoder.decode_step()
    live = int(decoder.mask.numel())
    assert decoder.cached_tokens == decoder.cache.keys.shape[1] * decoder.cache.keys.shape[3] > live
    while decoder.rows:
        decoder.decode_step()
    assert decoder.cached_tokens == 0


def test_engine_serves_concurrent_requests_streams_and_cancels(tiny):
    engine = _engine(tiny, max_rows=4, prefill_chunk=8)
    handles = [engine.submit(_ids(tiny, p), GREEDY) for p in PROMPTS]
    endless = engine.submit(_ids(tiny, "Count:"), SamplingParams(max_new_tokens=10_000, temperature=0.0))
    for prompt, handle in zip(PROMPTS, handles, strict=True):
        (completion,) = handle.result()
        assert completion.text == _alone(tiny, prompt, GREEDY)[0].text
        streamed, tokens = handle.drain()
        assert streamed.get(0, "") == completion.text and tokens == completion.completion_tokens
    endless.cancel()
    assert endless.wait(10)
    (cancelled,) = endless.result()
    assert cancelled.finish_reason == "cancelled" and cancelled.completion_tokens < 10_000
    assert engine.stats()["rows"] == 0 and engine.stats()["cached_tokens"] == 0


def test_engine_queues_requests_beyond_its_row_cap(tiny):
    engine = _engine(tiny, max_rows=2, prefill_chunk=256)
    handles = [engine.submit(_ids(tiny, PROMPTS[0]), SamplingParams(max_new_tokens=8, temperature=0.0, n=2))
               for _ in range(3)]
    results = [h.result() for h in handles]
    assert all(len(r) == 2 for r in results)
    assert len({tuple(c.text for c in r) for r in results}) == 1


def test_a_waiting_task_thread_wakes_for_the_first_text_not_at_its_next_flush(tiny):
    engine = _engine(tiny, max_rows=2, prefill_chunk=256)
    handle = engine.submit(_ids(tiny, "Count:"), SamplingParams(max_new_tokens=10_000, temperature=0.0))
    done = handle.wait(60, for_text=True)  # returns with the first text, long before 60 s
    deltas, tokens = handle.drain()
    assert not done and tokens >= 1
    handle.cancel()
    assert handle.wait(60, for_text=True) or handle.wait(10)  # wakes for text or for the end
    assert handle.result()[0].finish_reason == "cancelled"


def test_rows_another_decoder_started_continue_exactly_where_they_were(tiny):
    first, second = _decoder(tiny, prefill_chunk=8), _decoder(tiny, prefill_chunk=8)
    params = SamplingParams(max_new_tokens=20, temperature=0.9, seed=5, n=2, repetition_penalty=1.2)
    moved = BatchRequest(prompt_ids=_ids(tiny, PROMPTS[1]), params=params)
    while not first.prefill_step(moved):
        pass
    for _ in range(6):
        first.decode_step()
    second.prefill_step(BatchRequest(prompt_ids=_ids(tiny, PROMPTS[0]), params=GREEDY))  # a batch already running there
    rows, first.rows = first.rows, []
    second.adopt(rows)  # their prompts and 7 tokens each prefilled again (in chunks of 8)
    while second.rows:
        second.decode_step()
    unmoved = BatchRequest(prompt_ids=_ids(tiny, PROMPTS[1]), params=params)
    _drive(_decoder(tiny, prefill_chunk=8), [unmoved])
    assert [c.text for c in moved.completions()] == [c.text for c in unmoved.completions()]
    assert all(c.completion_tokens == 20 or c.finish_reason == "stop" for c in moved.completions())


def test_prompts_prefilled_together_decode_as_they_would_alone(tiny):
    decoder = _decoder(tiny)
    requests = [BatchRequest(prompt_ids=_ids(tiny, p), params=GREEDY) for p in PROMPTS]
    decoder.prefill_many(requests)  # different lengths: left-padded in one pass
    assert len(decoder.rows) == len(PROMPTS)
    while decoder.rows:
        decoder.decode_step()
    for prompt, request in zip(PROMPTS, requests, strict=True):
        (completion,) = request.completions()
        (alone,) = _alone(tiny, prompt, GREEDY)
        assert (completion.text, completion.finish_reason) == (alone.text, alone.finish_reason)


def test_a_burst_of_short_prompts_is_prefilled_in_one_pass_within_the_token_budget(tiny, monkeypatch):
    passes = []
    original = BatchDecoder.prefill_many
    monkeypatch.setattr(BatchDecoder, "prefill_many", lambda self, rs: (passes.append(len(rs)), original(self, rs))[1])
    ids = [_ids(tiny, p) for p in PROMPTS]
    budget = 2 * max(len(i) for i in ids[:2])  # room for the first two prompts, not the third
    engine = _engine(tiny, max_rows=8, prefill_chunk=max(budget, max(len(i) for i in ids)))
    with engine._wake:  # submitted together: the engine sees all three at its next admission
        handles = [GenerationHandle(BatchRequest(prompt_ids=i, params=GREEDY)) for i in ids]
        engine._waiting.extend(handles)
        engine._wake.notify()
    for prompt, handle in zip(PROMPTS, handles, strict=True):
        assert handle.result()[0].text == _alone(tiny, prompt, GREEDY)[0].text
    assert passes and passes[0] >= 2 and sum(passes) <= len(PROMPTS)


def test_the_first_token_is_published_before_the_next_decoding_step(tiny, monkeypatch):
    handle = GenerationHandle(BatchRequest(prompt_ids=_ids(tiny, PROMPTS[0]), params=GREEDY))
    text_before_first_step = []
    original = BatchDecoder.decode_step

    def spy(self):
        if not text_before_first_step:
            text_before_first_step.append(handle._tokens)
        return original(self)

    monkeypatch.setattr(BatchDecoder, "decode_step", spy)
    engine = _engine(tiny, max_rows=2, prefill_chunk=256)
    with engine._wake:
        engine._waiting.append(handle)
        engine._wake.notify()
    assert handle.result()[0].text == _alone(tiny, PROMPTS[0], GREEDY)[0].text
    assert text_before_first_step == [1]  # the token picked from the prefill's logits


CHURN = [  # (prompt, max_new_tokens, n, repetition_penalty): rows finish at different steps
    ("The weather today", 3, 1, 1.0),
    ("Once upon a time in a land far, far away there lived", 12, 1, 1.3),
    ("Hi", 6, 2, 1.0),
    ("Write one sentence for a red leather tote bag with two handles and a magnetic clasp", 9, 1, 1.0),
    ("The weather today", 5, 1, 1.3),
    ("Once upon a time in a land far, far away there lived", 4, 3, 1.0),
]


@pytest.mark.parametrize("step", [True, None], ids=["llama-step", "transformers-step"])
def test_rows_leaving_mid_batch_and_joining_shorter_or_longer_decode_as_they_would_alone(tiny, step):
    """The cache moves the last row into a leaving row's slot and writes a joining row into a free
    one: rows that leave from the middle (finished or cancelled), joins with prompts shorter and
    longer than the batch's columns and n > 1 must leave every row what it decodes alone."""
    decoder = BatchDecoder(tiny.model, tiny.tokenizer, eos_ids=eos_token_ids(tiny.model, tiny.tokenizer), step=step)
    cancelled = BatchRequest(prompt_ids=_ids(tiny, "Count:"), params=SamplingParams(max_new_tokens=10_000, temperature=0.0))
    requests = [
        BatchRequest(prompt_ids=_ids(tiny, text), params=SamplingParams(
            max_new_tokens=tokens, temperature=0.0, repetition_penalty=penalty, n=n))
        for text, tokens, n, penalty in CHURN
    ]
    pending, joins, steps, most_rows = [cancelled, *requests], set(), 0, 0
    while pending or decoder.rows:
        if pending:
            if decoder.mask is not None:
                joins.add("longer" if len(pending[0].prompt_ids) > decoder.mask.shape[1] else "not longer")
            assert decoder.prefill_step(pending.pop(0))
        most_rows = max(most_rows, len(decoder.rows))
        steps += 1
        if steps == 7:
            cancelled.cancelled = True  # the first row: the last one takes its slot
        decoder.decode_step()
        if decoder.rows:
            assert decoder.mask.shape == (decoder.cache.rows, decoder.cache.length)
    assert joins == {"longer", "not longer"} and most_rows >= 5
    assert decoder.cache is None and decoder.rows == []
    (stopped,) = cancelled.completions()
    assert stopped.finish_reason == "cancelled" and 0 < stopped.completion_tokens < 10
    for (text, _, n, _), request in zip(CHURN, requests, strict=True):
        (alone,) = _alone(tiny, text, SamplingParams(**{**request.params.__dict__, "n": 1}))
        assert [(c.text, c.completion_tokens, c.finish_reason) for c in request.completions()] == [
            (alone.text, alone.completion_tokens, alone.finish_reason)] * n
