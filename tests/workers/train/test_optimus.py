"""Training and checkpoints of the pretrained-parts VAE on tiny parts (the shipped MiniLM encoder,
the tests' tiny random SmolLM2-shaped decoder): training lowers the validation loss, the
checkpoint stores its config and only the trained weights, and loads for inference."""

import pytest
import torch

from tests.genmodel_fixtures import TINY_OPTIMUS, optimus_dirs, tiny_optimus  # noqa: F401
from workers.train.genmodels import VAE_FILE
from workers.train.optimus import (
    OptimusTrainConfig,
    latents_texts,
    optimus_build,
    optimus_checkpoint_load,
    optimus_evaluate,
    texts_posterior,
    trainable_state,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _checkpoint(tiny_optimus):  # noqa: F811
    return tiny_optimus.directory / "vae" / "tiny-optimus" / "v1" / VAE_FILE


def test_training_lowers_the_validation_loss_and_keeps_the_latent_in_use(tiny_optimus):  # noqa: F811
    encoder, decoder = optimus_dirs()
    history = tiny_optimus.history
    valid = tiny_optimus.corpus[:16]
    untrained = optimus_build(OptimusTrainConfig(**TINY_OPTIMUS), encoder_dir=encoder, decoder_dir=decoder, train=False)
    before = optimus_evaluate(untrained, valid)
    trained = optimus_checkpoint_load(_checkpoint(tiny_optimus), encoder_dir=encoder, decoder_dir=decoder)
    after = optimus_evaluate(trained.parts, valid)
    assert after["recon_nll"] < 0.95 * before["recon_nll"]
    assert [h["step"] for h in history] == [15, 30]
    metrics = tiny_optimus.vae_metrics
    assert metrics["architecture"] == "optimus" and metrics["steps"] == 30
    assert metrics["validation"]["kl"] > 0 and metrics["validation"]["active_units"] >= 1


def test_the_checkpoint_stores_its_config_and_only_the_trained_weights(tiny_optimus):  # noqa: F811
    payload = torch.load(_checkpoint(tiny_optimus), map_location="cpu", weights_only=True)
    assert payload["architecture"] == "optimus"
    assert payload["model_args"]["latent_dim"] == 8 and payload["model_args"]["prefix_len"] == 2
    assert payload["train_config"]["lora_rank"] == 4 and payload["encoder"] == "all-minilm-l6-v2"
    assert all("lora_" in k or k.startswith(("to_moments", "to_prefix", "to_embedding")) for k in payload["state_dict"])
    assert {"to_moments.weight", "to_prefix.weight", "to_embedding.weight"} <= set(payload["state_dict"])
    assert len(payload["train_text_hashes"]) > 50 and "optimizer" not in payload


def test_a_loaded_checkpoint_decodes_the_same_merged_or_not(tiny_optimus):  # noqa: F811
    encoder, decoder = optimus_dirs()
    merged = optimus_checkpoint_load(_checkpoint(tiny_optimus), encoder_dir=encoder, decoder_dir=decoder)
    adapter = optimus_checkpoint_load(_checkpoint(tiny_optimus), encoder_dir=encoder, decoder_dir=decoder, merge=False)
    texts = tiny_optimus.corpus[:4]
    mu_a, logvar_a = texts_posterior(merged.parts, texts)
    mu_b, _ = texts_posterior(adapter.parts, texts)
    assert mu_a.shape == logvar_a.shape == (4, 8) and torch.allclose(mu_a, mu_b, atol=1e-5)
    assert latents_texts(merged.parts, mu_a) == latents_texts(adapter.parts, mu_b)
    assert all(isinstance(t, str) for t in latents_texts(merged.parts, mu_a, decoding="beam"))


def test_no_line_break_is_ever_generated(tiny_optimus):  # noqa: F811
    """After its end-of-text token SmolLM2 writes newlines first: they are banned, so a decoded
    sentence is never blank."""
    encoder, decoder = optimus_dirs()
    parts = optimus_build(OptimusTrainConfig(**TINY_OPTIMUS), encoder_dir=encoder, decoder_dir=decoder, train=False)
    vocab = parts.decoder_tokenizer.get_vocab()
    breaks = {i for t, i in vocab.items() if "\n" in parts.decoder_tokenizer.convert_tokens_to_string([t])}
    assert breaks and breaks <= set(parts.model.config.banned_ids)
    assert len(parts.model.config.prefix_init_ids) == parts.model.config.prefix_len


def test_a_checkpoint_saved_before_the_memory_option_loads_with_its_input_prefix(tiny_optimus, tmp_path):  # noqa: F811
    encoder, decoder = optimus_dirs()
    payload = torch.load(_checkpoint(tiny_optimus), map_location="cpu", weights_only=True)
    old = optimus_build(OptimusTrainConfig(**TINY_OPTIMUS, memory=False), encoder_dir=encoder, decoder_dir=decoder)
    train_config = {k: v for k, v in payload["train_config"].items() if k != "memory"}  # as saved then
    path = tmp_path / "vae.pt"
    torch.save({**payload, "train_config": train_config, "state_dict": trainable_state(old.model)}, path)
    loaded = optimus_checkpoint_load(path, encoder_dir=encoder, decoder_dir=decoder, merge=False)
    assert loaded.parts.model.config.memory is False
    assert torch.equal(loaded.parts.model.to_prefix.weight, old.model.to_prefix.weight)


def test_a_time_budget_too_short_for_the_epochs_gets_kl_cycles_that_fit_it(monkeypatch, one_torch_thread):
    """A slow CPU: each step costs a (fake) second, the budget holds about 30 of the 140 steps
    that 20 epochs plan, so the cycles are cut from what the budget allows and the run ends at
    its new plan, the KL term at full weight, not stopped by the clock inside a cycle."""
    from tests.genmodel_fixtures import product_corpus
    from workers.train import optimus as optimus_module

    class Clock:  # one second each time the trainer looks at it
        now = 0.0

        @classmethod
        def monotonic(cls) -> float:
            cls.now += 1.0
            return cls.now

    monkeypatch.setattr(optimus_module, "time", Clock)
    encoder, decoder = optimus_dirs()
    logged = []
    config = OptimusTrainConfig(**{**TINY_OPTIMUS, "max_steps": 0, "max_epochs": 20, "max_seconds": 45})
    trained = optimus_module.optimus_train(product_corpus(120, seed=4), config=config, encoder_dir=encoder,
                                           decoder_dir=decoder, validation_fraction=0.15,
                                           log=lambda step, split, **values: logged.append((step, values)))
    (plan,) = [values for _, values in logged if "budget_steps" in values]
    assert plan["planned_steps"] == 140 and plan["budget_steps"] < 45  # 7 batches an epoch
    assert trained.metrics["stop_reason"] == "max_steps" and trained.metrics["steps"] == plan["budget_steps"]
    last_weight = [values["kl_weight"] for _, values in logged if "kl_weight" in values][-1]
    assert last_weight == pytest.approx(1.0)


def test_the_repetition_penalty_lowers_every_form_of_a_written_word_and_nothing_else():
    from workers.ml.optimus import OptimusVAE, WordIndex

    # tokens 1 and 2: one word (" chill", "Chill"); 4: a comma; 5 and 6 spell "Cuff" "links",
    # 7 is " cufflinks"; 8 "Ch" and 9 "ill" spell "Chill" in two tokens
    pieces = ["<end>", " chill", "Chill", " warm", ",", "Cuff", "links", " cufflinks", "Ch", "ill"]
    words = WordIndex(groups=torch.tensor([-1, 0, 0, 1, -1, -1, -1, 2, -1, -1]), pieces=pieces,
                      words={"chill": 0, "warm": 1, "cufflinks": 2})
    logits = torch.full((4, len(pieces)), 2.0)
    out = OptimusVAE._penalise(logits.clone(), [[2, 4], [], [5, 6, 4, 5], [8, 9, 4]], words, 2.0)
    assert out[0].tolist() == [2.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # " chill" too; the comma is free
    assert out[1].tolist() == logits[1].tolist()  # nothing written yet
    # "Cufflinks" in two tokens: its one-token form, its first token, and "links" after "Cuff" again
    assert out[2].tolist() == [2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    assert out[3, [1, 2, 8]].tolist() == [1.0, 1.0, 1.0] and out[3, 9] == 2.0  # "Chill, " -> not " chill" again


def test_word_groups_join_a_words_forms_and_leave_pieces_and_punctuation_out(tiny_optimus):  # noqa: F811
    from workers.train.optimus import word_token_groups

    encoder, decoder = optimus_dirs()
    parts = optimus_checkpoint_load(_checkpoint(tiny_optimus), encoder_dir=encoder, decoder_dir=decoder).parts
    groups = word_token_groups(parts).groups
    ids = lambda text: parts.decoder_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    (space_form,), (capital_form,) = ids(" price"), ids("Price")
    assert groups[space_form] == groups[capital_form] >= 0
    assert groups[ids(",")[0]] == -1 and groups[ids(" 50")[0]] == -1
    # "Chill" is two tokens of SmolLM2's, " chill" one: writing the first counts as the second's word
    assert len(ids("Chill")) == 2 and len(ids(" chill")) == 1
    written, spellings, _ = word_token_groups(parts).written(ids("Chill,"))
    assert groups[ids(" chill")[0]].item() in written and spellings == [ids("Chill")]
