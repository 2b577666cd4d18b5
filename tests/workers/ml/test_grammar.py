"""Constrained decoding on the tiny random model: whatever the model prefers, every candidate is a
document of the grammar, in the batching decoder and in the generate() path alike (the shipped
SmolLM2 behind /v1: tests/generation/apis/test_openai.py)."""

import json

import pytest
import torch

from generation.lm import chat_input_ids
from generation.structured import response_format_grammar
from workers.ml.batching import BatchDecoder, BatchRequest
from workers.ml.decoding import SamplingParams
from workers.ml.lm import eos_token_ids, generate
from workers.runtime.models import lm_get

# Finite schemas: a random model must finish them within the token budget.
SCHEMAS = [
    {"enum": ["refund", "track_order", "complaint"]},
    {"type": "object", "properties": {"urgent": {"type": "boolean"}, "tone": {"enum": ["calm", "angry"]}},
     "required": ["urgent", "tone"], "additionalProperties": False},
    {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "minItems": 2, "maxItems": 2},
]


def _valid(value, schema) -> bool:
    import jsonschema

    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    return lm_get(str(tiny_lm))


def _grammar(schema):
    return response_format_grammar({"type": "json_schema", "json_schema": {"name": "t", "schema": schema}})


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_batched_candidates_are_documents_of_their_schema(tiny, one_torch_thread, temperature):
    decoder = BatchDecoder(tiny.model, tiny.tokenizer, eos_ids=eos_token_ids(tiny.model, tiny.tokenizer))
    ids = chat_input_ids(tiny.tokenizer, prompt="Answer:", messages=None)
    requests = [BatchRequest(prompt_ids=ids, params=SamplingParams(max_new_tokens=60, temperature=temperature, seed=i,
                                                                   n=2, grammar=_grammar(schema)))
                for i, schema in enumerate(SCHEMAS)]
    # A free request in the same batch is left alone by its neighbours' grammars.
    free = BatchRequest(prompt_ids=ids, params=SamplingParams(max_new_tokens=8, temperature=0.0))
    pending = [*requests, free]
    while pending or decoder.rows:
        if pending and decoder.prefill_step(pending[0]):
            pending.pop(0)
        if decoder.rows:
            decoder.decode_step()
    for request, schema in zip(requests, SCHEMAS, strict=True):
        for completion in request.completions():
            assert completion.finish_reason == "stop", completion
            assert _valid(json.loads(completion.text), schema), completion.text
    (unconstrained,) = free.completions()
    assert unconstrained.completion_tokens == 8


def test_generate_path_candidates_are_documents_of_their_schema(tiny, one_torch_thread):
    ids = torch.tensor([chat_input_ids(tiny.tokenizer, prompt="Answer:", messages=None)])
    for schema in SCHEMAS:
        params = SamplingParams(max_new_tokens=60, temperature=1.0, seed=3, n=2, grammar=_grammar(schema))
        for completion in generate(tiny.model, tiny.tokenizer, ids, params):
            assert completion.finish_reason == "stop", completion
            assert _valid(json.loads(completion.text), schema), completion.text
