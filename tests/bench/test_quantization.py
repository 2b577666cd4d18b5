"""Smoke test of bench/quantization.py on the tiny random model: every variant loads, decodes
exactly the asked number of tokens through the batching decoder, and gets a finite perplexity."""

import csv
import math

import pytest

from bench import quantization as q


@pytest.mark.parametrize("variant", ["float32", "bfloat16", "int8-dynamic", "pruned30"])
def test_variant_measures_and_scores(tiny_lm, tmp_path, variant):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    model = q.load_variant(tiny_lm, variant)
    prompt_ids = tokenizer("hello there, how are you?")["input_ids"]

    result = q.measure(model, tokenizer, prompt_ids, 5)
    assert len(result["greedy_tokens"]) == 5  # no EOS: every row decodes exactly new_tokens
    assert result["prefill_ms"] > 0 and result["single_tok_s"] > 0 and result["batch16_tok_s"] > 0

    path = tmp_path / "texts.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerows([[i, f"held back text number {i}, with a few more words."] for i in range(10)])
    texts = q.read_texts(path, "text", 3)
    assert texts == [f"held back text number {i}, with a few more words." for i in (7, 8, 9)]
    ppl = q.perplexity(model, [tokenizer(t)["input_ids"] for t in texts])
    assert math.isfinite(ppl) and ppl > 1


def test_pruning_zeroes_30_percent_of_layer_weights(tiny_lm):
    model = q.load_variant(tiny_lm, "pruned30")
    weight = model.model.layers[0].mlp.up_proj.weight
    assert (weight == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert (model.lm_head.weight == 0).float().mean().item() < 0.01  # tied to the embedding: left alone


def test_greedy_match():
    assert q.greedy_match([1, 2, 3], [1, 2, 3]) == 3
    assert q.greedy_match([1, 5, 3], [1, 2, 3]) == 1
