"""The copy tone scorer: fitted on the corpus's training products only, it reads the tone of
sentences of products it never saw well above chance, and a worker loads it from the cache."""

import numpy as np
import pytest

from workers.runners import copy_tone as tone_module
from workers.runners.copy_tone import corpus_split, tone_scorer_get, tone_sentences


def test_the_held_back_products_are_not_fitted_on():
    train, _ = tone_sentences(split="train")
    test, test_tones = tone_sentences(split="test")
    assert len(train) > 1000 and len(test) > 100
    assert not set(train) & set(test)
    assert set(test_tones) == {"neutral", "playful", "premium", "technical"}
    assert corpus_split("apparel-001") in ("train", "test")


@pytest.mark.timeout(300)
def test_the_tone_of_unseen_sentences_is_read_well_above_chance(minilm, settings, tmp_path, monkeypatch):
    settings.GENAI_MODEL_CACHE_DIR = tmp_path
    monkeypatch.setattr(tone_module, "_scorer", None)
    scorer = tone_scorer_get()
    (cached,) = tmp_path.glob("copy-tone-*.npz")
    texts, tones = tone_sentences(split="test")
    vectors = minilm.encode(texts)
    predicted = np.asarray(scorer.tones)[scorer.probabilities(vectors).argmax(axis=1)]
    assert (predicted == np.asarray(tones)).mean() > 0.5  # chance is 0.25; 0.65 measured
    playful = "Ding ding, the Retro Tee from Fizzwick is here to party in cream with red trim!"
    technical = "Composition is 60% cotton and 40% polyester, at a fabric weight of 200 gsm."
    assert scorer.score([playful], "playful")[0] > scorer.score([technical], "playful")[0]
    assert scorer.score([technical], "technical")[0] > 0.5

    monkeypatch.setattr(tone_module, "_scorer", None)  # a new worker: read from the cache, not fitted again
    monkeypatch.setattr(tone_module, "tone_fit", lambda *a, **k: pytest.fail("fitted again"))
    again = tone_scorer_get()
    assert cached.exists() and np.allclose(again.coef, scorer.coef)
