"""Tone identification: tones that change the text the same way across products are found; texts
whose differences are noise score about chance."""

import numpy as np

from workers.evaluation.copy import tone_identification

TONES = ["neutral", "playful", "premium", "technical"]


def test_tones_that_change_texts_consistently_are_identified_and_noise_is_not():
    rng = np.random.default_rng(0)
    products = rng.normal(size=(12, 1, 32))  # what each product's texts share
    style = rng.normal(size=(1, 4, 32))  # what each tone adds, the same for every product
    visible = products + 0.5 * style + 0.1 * rng.normal(size=(12, 4, 32))
    result = tone_identification(visible, TONES)
    assert result["accuracy"] == 1.0 and result["chance"] == 0.25 and set(result["per_tone"]) == set(TONES)
    noise = products + 0.5 * rng.normal(size=(12, 4, 32))
    assert tone_identification(noise, TONES)["accuracy"] < 0.6
