"""BLEU, self-BLEU, distinct-n and novelty on hand-checkable sets."""

import pytest

from workers.ml.text_metrics import (
    corpus_bleu,
    distinct_n,
    novelty,
    self_bleu,
    sentence_bleu,
    text_hash,
    text_key,
    words,
)


def test_words_and_keys():
    assert words("Hello, {{Order Number}} isn't here!") == ["hello", ",", "{{order number}}", "isn't", "here", "!"]
    assert text_key("The  red MUG.") == text_key("the red mug .")
    assert text_hash("A b") == text_hash("a  B")


def test_bleu_bounds():
    assert corpus_bleu(["the red mug is warm"], ["the red mug is warm"]) == pytest.approx(1.0)
    assert corpus_bleu(["blue"], ["the red mug is warm"]) == 0.0
    assert sentence_bleu("the red mug is warm", ["the red mug is warm"]) == pytest.approx(1.0)
    assert 0 < sentence_bleu("the red mug is cold", ["the red mug is warm"]) < 1


def test_self_bleu_matches_the_pairwise_definition():
    texts = ["the red mug is warm", "the red lamp is warm", "a blue chair for the office", "the red mug is warm ."]
    naive = sum(sentence_bleu(t, texts[:i] + texts[i + 1 :]) for i, t in enumerate(texts)) / len(texts)
    assert self_bleu(texts) == pytest.approx(naive)
    assert self_bleu(["same words here"] * 3) == pytest.approx(1.0)
    assert self_bleu(["alpha beta gamma delta", "one two three four"]) == 0.0


def test_distinct_and_novelty():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b", "c d"], 2) == 1.0
    training = {text_hash("The red mug.")}
    assert novelty(["the red mug .", "a new lamp"], training) == 0.5


def test_a_sentence_cut_off_mid_word_is_unfinished_and_an_ended_one_is_not():
    from workers.ml.text_metrics import unfinished

    assert unfinished("The set is made from 100% ster") and unfinished("with a colourful finish and a")
    for ended in ("Ready, set, glow!", 'It is "ready."', "Please follow these steps:", "Wow\u2026", ""):
        assert not unfinished(ended)


def test_tokenizer_words_are_whole_words_of_letters_lower_cased():
    from workers.ml.text_metrics import text_words, tokenizer_words

    class Vocabulary:
        def get_vocab(self):
            return {"\u0120Jacket": 0, "ing": 1, "##ly": 2, "\u01201999": 3, "Rain": 4, "\u0120caf\u00e9": 5}

    assert tokenizer_words(Vocabulary()) == {"jacket", "ing", "rain"}
    assert text_words(["A Rain-proof jacket, 2 pockets."]) == {"a", "rain", "proof", "jacket", "pockets"}
