"""The sentiment classifier's training loop on a decoder base (the ``smollm2`` option): here the
tiny random SmolLM2-shaped model of the test settings, with the real SmolLM2 tokenizer."""

import random

import pytest
import torch

from workers.train.sentiment import (
    TrainConfig,
    artifact_load,
    artifact_save,
    classifier_from_base,
    layers_freeze,
    outcomes_merge,
    predict_probabilities,
    train_classifier,
)

WORDS = {
    "negative": ["plunged", "slumped", "tumbled", "sank", "crashed"],
    "positive": ["soared", "rallied", "jumped", "surged", "climbed"],
    "neutral": ["met analysts", "held a meeting", "filed a report", "named a director", "moved offices"],
}


def rows(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    labels = [rng.choice(list(WORDS)) for _ in range(n)]
    return [f"{rng.choice(['Acme', 'Globex', 'Hooli', 'Initech'])} {rng.choice(WORDS[label])} today" for label in labels], labels


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def test_a_decoder_base_learns_and_round_trips(tiny_lm, tmp_path):
    train_t, train_l = rows(192, seed=1)
    val_t, val_l = rows(60, seed=2)
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-3, head_lr=1e-2, evals_per_epoch=1, patience=5, max_len=16,
                         evaluate_initial=True, warmup_fraction=0.0)
    outcome = train_classifier(base_dir=tiny_lm, train_texts=train_t, train_labels=train_l, val_texts=val_t,
                               val_labels=val_l, config=config)
    initial, best = outcome.history[0]["accuracy"], outcome.validation_best["accuracy"]
    assert best >= 0.8 and best > initial + 0.2, outcome.history
    assert outcome.tokenizer.pad_token is not None  # decoders have none of their own

    artifact_save(tmp_path / "clf", outcome=outcome, ensemble=False, extra={})
    members, tokenizer, _ = artifact_load(tmp_path / "clf")
    before = predict_probabilities([outcome.model], outcome.tokenizer, val_t)
    after = predict_probabilities(members, tokenizer, val_t)
    assert after == pytest.approx(before, abs=1e-5)
    # padding does not change a text's prediction (pooling masks it out)
    alone = predict_probabilities(members, tokenizer, val_t[:1])
    assert alone[0] == pytest.approx(after[0], abs=1e-4)


def test_train_layers_freezes_all_but_the_top_decoder_layers(tiny_lm):
    model, _ = classifier_from_base(tiny_lm, max_len=16, dropout=0.1)
    layers_freeze(model, 1)
    trainable = {".".join(name.split(".")[:2]) if name.startswith("layers.") else name.split(".")[0]
                 for name, p in model.encoder.named_parameters() if p.requires_grad}
    top = len(model.encoder.layers) - 1
    assert trainable == {f"layers.{top}", "norm"}


def test_bf16_autocast_training_step_runs_on_cpu(tiny_lm):
    train_t, train_l = rows(32, seed=3)
    config = TrainConfig(epochs=1, batch_size=16, max_steps=2, evals_per_epoch=1, max_len=16, amp_dtype="bfloat16")
    outcome = train_classifier(base_dir=tiny_lm, train_texts=train_t, train_labels=train_l, val_texts=train_t[:8],
                               val_labels=train_l[:8], config=config)
    assert outcome.steps == 2 and all(p.dtype == torch.float32 for p in outcome.model.parameters())


def test_runs_with_different_seeds_merge_into_one_ensemble(tiny_lm):
    train_t, train_l = rows(96, seed=4)
    val_t, val_l = rows(30, seed=5)
    runs = [
        train_classifier(base_dir=tiny_lm, train_texts=train_t, train_labels=train_l, val_texts=val_t, val_labels=val_l,
                         config=TrainConfig(epochs=2, batch_size=16, lr=1e-3, head_lr=1e-2, evals_per_epoch=1,
                                            max_len=16, ensemble=2, seed=seed))
        for seed in (0, 1)
    ]
    merged = outcomes_merge(runs, val_texts=val_t, val_labels=val_l)
    assert len(merged.checkpoints) == 4 and merged.steps == runs[0].steps + runs[1].steps
    f1 = [c.validation["macro_f1"] for c in merged.checkpoints]
    assert f1 == sorted(f1, reverse=True) and merged.validation_best["macro_f1"] == f1[0]
    assert {entry["run"] for entry in merged.history} == {0, 1}
    # the merged model holds the best checkpoint; the ensemble figure is of all four averaged
    best_alone = predict_probabilities([merged.model], merged.tokenizer, val_t)
    assert merged.validation_ensemble["n"] == len(val_t) and best_alone.shape == (len(val_t), 3)
    assert outcomes_merge(runs[:1], val_texts=val_t, val_labels=val_l) is runs[0]


def test_the_frozen_baseline_folds_into_a_bounded_head_when_a_dimension_is_constant():
    """all-mpnet-base-v2's pooled vectors have dimensions that are constant up to rounding;
    standardising them once gave a head with weights of 1e33 that fine-tuning could not move."""
    import numpy as np

    from workers.train.sentiment import LABELS, baseline_head, frozen_baseline

    rng = np.random.default_rng(0)
    labels = [LABELS[i % 3] for i in range(300)]
    vectors = rng.normal(0.0, 0.1, (300, 8)).astype(np.float32)
    vectors[:, 0] += np.array([LABELS.index(label) for label in labels]) * 0.2  # the signal
    vectors[:, 5] = 0.0
    vectors[:, 6] = rng.normal(0.0, 1e-8, 300)  # rounding noise
    pipeline, figures = frozen_baseline(vectors[:200], labels[:200], vectors[200:], labels[200:])
    weight, bias = baseline_head(pipeline, 8)

    assert weight.shape == (3, 8) and np.abs(weight).max() < 1e3
    assert not weight[:, 5].any() and not weight[:, 6].any()
    assert ((vectors @ weight.T + bias).argmax(1) == pipeline.predict(vectors)).all()
    assert figures["accuracy"] > 0.6
