"""The intent head and its metrics (no embedding model needed)."""

import numpy as np
import pytest
import torch

from workers.ml.intent import IntentClassifier, IntentConfig
from workers.ml.metrics import classification_metrics


def test_metrics_by_hand():
    gold = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "a"]
    figures = classification_metrics(gold, predicted)
    # a: P 1/2 R 1/2 F 0.5; b: P 2/3 R 1 F 0.8; c: F 0 -> macro 0.4333
    assert figures == {"accuracy": 0.6, "macro_f1": pytest.approx(0.4333, abs=1e-4), "n": 5}
    assert classification_metrics([], []) == {"accuracy": 0.0, "macro_f1": 0.0, "n": 0}
    with pytest.raises(ValueError):
        classification_metrics(["a"], [])


@pytest.mark.parametrize("hidden", [0, 32])
def test_checkpoint_round_trip_predicts_the_same(tmp_path, hidden):
    torch.manual_seed(0)
    model = IntentClassifier(IntentConfig(input_dim=8, hidden=hidden, n_labels=3), ["x", "y", "z"])
    vectors = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    before = model.predict(vectors)
    loaded = IntentClassifier.load(model.save(tmp_path).parent)
    assert loaded.predict(vectors) == before
    assert loaded.config == model.config and loaded.labels == ["x", "y", "z"]
    label, confidence = loaded.predict(vectors[0])[0]
    assert label in {"x", "y", "z"} and 1 / 3 <= confidence <= 1
    assert loaded.predict(np.zeros((0, 8), dtype=np.float32)) == []


def test_label_count_must_match():
    with pytest.raises(ValueError):
        IntentClassifier(IntentConfig(input_dim=4, n_labels=3), ["a", "b"])


def _linear(labels: list[str], sources: list[str], logits: list[float]) -> IntentClassifier:
    """A linear head whose logits for the input [1, 0] are ``logits``."""
    model = IntentClassifier(IntentConfig(input_dim=2, hidden=0, dropout=0.0, n_labels=len(labels)), labels, sources)
    with torch.no_grad():
        model.net[1].weight.copy_(torch.tensor([[value, 0.0] for value in logits]))
        model.net[1].bias.zero_()
    return model


def test_a_source_chooses_among_its_own_labels_only():
    model = _linear(["card_lost", "refund", "track_order"], ["banking", "banking", "shop"], [1.0, 0.0, 3.0])
    x = np.array([[1.0, 0.0]], dtype=np.float32)
    assert model.predict(x)[0][0] == "track_order"
    (label, confidence), = model.predict(x, source="banking")
    assert label == "card_lost" and confidence == pytest.approx(np.e / (np.e + 1), abs=1e-5)  # renormalised over banking
    assert model.predict(x, source="shop")[0] == ("track_order", pytest.approx(1.0))
    with pytest.raises(ValueError, match="no label of source 'news'; the model's sources: banking, shop"):
        model.predict(x, source="news")


def test_named_labels_restrict_the_choice_unless_the_model_has_none_of_them():
    model = _linear(["cancel_order", "request_refund", "track_order"], ["shop", "banking", "shop"], [1.0, 2.0, 0.0])
    x = np.array([[1.0, 0.0]], dtype=np.float32)
    assert model.predict(x)[0][0] == "request_refund"  # across every label
    (label, confidence), = model.predict(x, labels={"Cancel_Order", "track_order", "delivery_period"})
    assert label == "cancel_order" and confidence == pytest.approx(np.e / (np.e + 1), abs=1e-5)
    assert model.predict(x, labels={"delivery_period"})[0][0] == "request_refund"  # none known: every label
    assert model.predict(x, labels=set())[0][0] == "request_refund"
    assert model.predict(x, source="shop", labels={"track_order"})[0] == ("track_order", pytest.approx(1.0))


def test_fine_tuned_top_layers_read_token_states_and_round_trip(tmp_path):
    from workers.ml.intent import states_pad

    torch.manual_seed(0)
    encoder = {"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 16, "vocab_size": 16, "max_position_embeddings": 32}
    config = IntentConfig(input_dim=8, hidden=0, n_labels=2, encoder_layers=1, encoder=encoder)
    model = IntentClassifier(config, ["a", "b"], ["s", "t"]).eval()
    assert len(model.top) == 1
    rng = np.random.default_rng(0)
    states = [rng.normal(size=(n, 8)).astype(np.float32) for n in (3, 7, 1)]
    before = model.predict(states)
    # padding changes nothing: a text's states alone give its prediction
    assert model.predict(states[:1]) == before[:1]
    x, mask = states_pad(states)
    assert x.shape == (3, 7, 8) and mask.sum(1).tolist() == [3, 7, 1]
    assert torch.allclose(model.pool(x, mask).norm(dim=-1), torch.ones(3))
    loaded = IntentClassifier.load(model.save(tmp_path).parent)
    assert loaded.predict(states) == before and loaded.sources == ["s", "t"]
    with pytest.raises(ValueError, match="encoder_layers must be 1 to 2"):
        IntentClassifier(IntentConfig(input_dim=8, n_labels=2, encoder_layers=3, encoder=encoder), ["a", "b"])
