"""The VAE and GAN training loops on a small corpus: no posterior collapse, loss curves logged,
checkpoints that give identical outputs after a round trip, early stopping, the time budget."""

import pytest
import torch

from tests.genmodel_fixtures import TINY_GAN, TINY_VAE, product_corpus, tiny_genmodel  # noqa: F401
from workers.train.genmodels import (
    GAN_FILE,
    VAE_FILE,
    GANTrainConfig,
    VAETrainConfig,
    corpus_sentences,
    corpus_split,
    gan_checkpoint_load,
    gan_train,
    vae_checkpoint_load,
    vae_train,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def test_corpus_sentences_split_replies_and_drop_numbering_short_pieces_and_duplicates():
    reply = (
        "I understand your concern. Here is what to do:\n\n1. Log in to your account.\n2. Open the orders page.\n"
        "Ok.\nI understand your concern."
    )
    assert corpus_sentences([reply, "Log in to your account."]) == [
        "I understand your concern.",
        "Here is what to do:",
        "Log in to your account.",
        "Open the orders page.",
    ]
    assert corpus_sentences(["one two three four five six"], max_words=5) == []


def test_corpus_split_is_seeded_and_caps_validation():
    texts = [f"sentence number {i} here" for i in range(100)]
    train, valid = corpus_split(texts, validation_fraction=0.2, seed=1, validation_max=10)
    assert len(valid) == 10 and len(train) == 90 and not set(train) & set(valid)
    assert corpus_split(texts, validation_fraction=0.2, seed=1, validation_max=10) == (train, valid)


def test_tiny_vae_trains_without_posterior_collapse(tiny_genmodel):  # noqa: F811
    metrics = tiny_genmodel.vae_metrics
    validation = metrics["validation"]
    assert validation["kl"] > 0.3  # nats per sentence: the decoder uses z
    assert validation["active_units"] >= validation["latent_dim"] // 2
    assert metrics["steps"] == TINY_VAE["max_steps"] and metrics["sentences_per_second"] > 0


def test_vae_loss_falls_and_curves_are_logged():
    points = []
    trained = vae_train(
        product_corpus(80),
        config=VAETrainConfig(**{**TINY_VAE, "max_steps": 30, "eval_every": 10, "kl_warmup_steps": 1000}),
        log=lambda step, split, **values: points.append((step, split, values)),
    )
    train = [v for _, split, v in points if split == "train"]
    valid = [v for _, split, v in points if split == "validation"]
    assert len(train) == 3 and len(valid) >= 3
    assert train[-1]["recon"] < train[0]["recon"]
    assert {"elbo", "recon", "kl", "active_units"} <= set(valid[0])
    assert trained.metrics["validation"]["elbo"] == max(v["elbo"] for v in valid)  # the best state is kept


def test_early_stopping_and_stop_callback():
    config = VAETrainConfig(**{**TINY_VAE, "max_steps": 400, "eval_every": 2, "patience": 1, "lr": 0.5,
                               "kl_schedule": "constant"})
    trained = vae_train(product_corpus(60), config=config)
    assert trained.metrics["stop_reason"] == "early_stopping" and trained.metrics["steps"] < 400
    stopped = vae_train(product_corpus(60), config=VAETrainConfig(**{**TINY_VAE, "max_steps": 400}), should_stop=lambda: True)
    assert stopped.metrics["stop_reason"] == "stopped" and stopped.metrics["steps"] == 1


def test_vae_checkpoint_round_trip_gives_identical_outputs(tiny_genmodel):  # noqa: F811
    one = vae_checkpoint_load(tiny_genmodel.directory / "vae" / "tiny" / "v1" / VAE_FILE)
    two = vae_checkpoint_load(tiny_genmodel.directory / "vae" / "tiny" / "v1" / VAE_FILE)
    texts = tiny_genmodel.corpus[:6]
    batch, lengths = one.model.batch_make(one.tokenizer.encode_batch(texts))
    with torch.inference_mode():
        mu1, lv1 = one.model.encode(batch, lengths)
        mu2, lv2 = two.model.encode(batch, lengths)
        assert torch.equal(mu1, mu2) and torch.equal(lv1, lv2)
        assert one.model.generate(mu1) == two.model.generate(mu2)
        assert one.model.generate(mu1, strategy="sample", generator=torch.Generator().manual_seed(5)) == two.model.generate(
            mu2, strategy="sample", generator=torch.Generator().manual_seed(5)
        )
    assert one.tokenizer.to_json() == two.tokenizer.to_json()
    assert one.train_config["latent_dim"] == TINY_VAE["latent_dim"] and one.metrics["steps"] > 0
    assert len(one.train_text_hashes) > 100
    assert set(one.payload) >= {"model_args", "state_dict", "optimizer", "train_config", "tokenizer", "metrics"}


def test_gan_checkpoint_round_trip_and_seeded_sampling(tiny_genmodel):  # noqa: F811
    path = tiny_genmodel.directory / "gan" / "tiny-gan" / "v1" / GAN_FILE
    one, two = gan_checkpoint_load(path), gan_checkpoint_load(path)
    assert one.vae_label == "tiny@1" and one.critic_real_std > 0
    with torch.inference_mode():
        z1 = one.gan.sample(7, generator=torch.Generator().manual_seed(2))
        z2 = two.gan.sample(7, generator=torch.Generator().manual_seed(2))
        assert torch.equal(z1, z2) and torch.equal(one.gan.critic_score(z1), two.gan.critic_score(z2))
    metrics = tiny_genmodel.gan_metrics
    assert metrics["steps"] == 60 and len(metrics["fixed_noise_samples"]) == 8


def test_the_mode_seeking_term_spreads_the_generated_latents(tiny_genmodel):  # noqa: F811
    vae = vae_checkpoint_load(tiny_genmodel.directory / "vae" / "tiny" / "v1" / VAE_FILE)
    train, valid = tiny_genmodel.corpus[::2], tiny_genmodel.corpus[1::2]
    spread = {
        weight: gan_train(vae.model, vae.tokenizer, train, valid, config=GANTrainConfig(**TINY_GAN, diversity_weight=weight)).metrics
        for weight in (0.0, 3.0)
    }
    assert spread[3.0]["generated_latent_std"] > 1.1 * spread[0.0]["generated_latent_std"], spread
    assert spread[0.0]["validation_latent_std"] == spread[3.0]["validation_latent_std"] > 0
