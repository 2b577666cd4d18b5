"""A tiny sentence VAE + latent GAN trained once per test session on a small product-copy corpus,
and a fixture that registers it as ModelVersion rows for tests of the job kinds and commands.

Import the fixtures into a test module (``from tests.genmodel_fixtures import genmodel  # noqa``);
the training itself is cached in this module, so it runs once whichever modules use it.
"""

from __future__ import annotations

import itertools
import random
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

COLOURS = ["red", "blue", "green", "black", "white", "grey"]
ITEMS = ["jacket", "backpack", "lamp", "kettle", "chair", "mug", "scarf", "desk"]
QUALITIES = ["light", "sturdy", "soft", "compact", "warm", "elegant", "durable", "quiet"]
USES = ["for travel", "for the office", "for cold mornings", "for small flats", "for every day"]


def product_corpus(n: int = 240, seed: int = 0) -> list[str]:
    """Short product-copy sentences of a few templates (a catalogue is not shipped)."""
    rng = random.Random(seed)
    templates = [
        "This {c} {i} is {q} and {q2}.",
        "A {q} {c} {i} made {u}.",
        "Our {i} comes in {c} and is {q} {u}.",
        "The {q} {i} is perfect {u}.",
    ]
    out = set()
    for _ in itertools.count():
        if len(out) >= n:
            break
        q, q2 = rng.sample(QUALITIES, 2)
        out.add(rng.choice(templates).format(c=rng.choice(COLOURS), i=rng.choice(ITEMS), q=q, q2=q2, u=rng.choice(USES)))
    return sorted(out)


TINY_VAE = dict(
    vocab_size=600, embed_dim=32, hidden_dim=64, latent_dim=8, batch_size=32, max_epochs=100, max_steps=300,
    eval_every=50, kl_warmup_steps=200, free_bits=0.5, word_dropout=0.3, lr=6e-3, patience=100, max_len=24,
)
TINY_GAN = dict(noise_dim=8, hidden_dim=32, layers=2, batch_size=64, steps=60, n_critic=3, lr=5e-4, log_every=20)


@dataclass
class TinyGenModel:
    directory: Path
    corpus: list[str]
    vae_metrics: dict
    gan_metrics: dict


@lru_cache(maxsize=1)
def tiny_genmodel_train(directory: str) -> TinyGenModel:
    import torch

    from workers.train.genmodels import (
        GAN_FILE,
        VAE_FILE,
        GANTrainConfig,
        VAETrainConfig,
        gan_checkpoint_save,
        gan_train,
        vae_checkpoint_save,
        vae_train,
    )

    root = Path(directory)
    shutil.rmtree(root, ignore_errors=True)
    corpus = product_corpus()
    # One thread: a tiny model's ops are too small to split, and on a busy machine a second
    # thread's barrier waits cost more than the work.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vae = vae_train(corpus, config=VAETrainConfig(**TINY_VAE), validation_fraction=0.15)
        gan = gan_train(vae.model, vae.tokenizer, vae.train_texts, vae.valid_texts, config=GANTrainConfig(**TINY_GAN))
    finally:
        torch.set_num_threads(threads)
    vae_checkpoint_save(root / "vae" / "tiny" / "v1" / VAE_FILE, vae)
    gan_checkpoint_save(root / "gan" / "tiny-gan" / "v1" / GAN_FILE, gan, vae_label="tiny@1")
    return TinyGenModel(directory=root, corpus=corpus, vae_metrics=vae.metrics, gan_metrics=gan.metrics)


@pytest.fixture(scope="session")
def tiny_genmodel(tmp_path_factory) -> TinyGenModel:
    return tiny_genmodel_train(str(tmp_path_factory.getbasetemp() / "genmodel-store"))


@pytest.fixture
def genmodel(db, settings, tiny_genmodel):
    """The tiny VAE ``tiny@1`` and its GAN ``tiny-gan@1`` as ready ModelVersion rows."""
    from generation.models import ModelVersion
    from workers.runtime import genmodels

    settings.GENAI_MODEL_STORE_DIR = tiny_genmodel.directory
    genmodels._cache.clear()  # primary keys repeat across tests
    vae = ModelVersion.objects.create(
        family="vae", name="tiny", version=1, purpose=settings.GENAI_GENMODEL_PURPOSE, artifact_path="vae/tiny/v1",
        metrics=tiny_genmodel.vae_metrics,
    )
    gan = ModelVersion.objects.create(
        family="gan", name="tiny-gan", version=1, purpose=settings.GENAI_GENMODEL_PURPOSE, artifact_path="gan/tiny-gan/v1",
        config={"vae": "tiny@1"}, metrics=tiny_genmodel.gan_metrics,
    )
    yield vae, gan
    genmodels._cache.clear()


# --- the pretrained-parts VAE (workers.ml.optimus) on the tests' tiny random LM -------------------

TINY_OPTIMUS = dict(latent_dim=8, prefix_len=2, max_len=16, batch_size=16, max_steps=30, eval_every=15,
                    validation_max=16, lr=3e-3, lora_lr=3e-3, lora_rank=4, lora_alpha=8, kl_cycles=2, free_bits=0.25)
TINY_OPTIMUS_GAN = dict(noise_dim=8, hidden_dim=32, layers=2, batch_size=32, steps=40, n_critic=2, lr=5e-4,
                        log_every=40, fixed_noise=2)


@dataclass
class TinyOptimus:
    directory: Path
    corpus: list[str]
    vae_metrics: dict
    gan_metrics: dict
    history: list


def optimus_dirs() -> tuple[Path, Path]:
    """(encoder, decoder) of the tests: the shipped MiniLM and the tiny random SmolLM2-shaped LM."""
    from django.conf import settings

    from workers.runtime.embeddings import embed_model_path

    return embed_model_path(), Path(settings.GENAI_LM_MODEL)


@lru_cache(maxsize=1)
def tiny_optimus_train(directory: str) -> TinyOptimus:
    import torch
    from django.conf import settings

    from workers.train.genmodels import GAN_FILE, VAE_FILE, GANTrainConfig, gan_checkpoint_save, gan_train_on_latents
    from workers.train.optimus import (
        OptimusTrainConfig,
        latents_texts,
        optimus_checkpoint_save,
        optimus_train,
        texts_posterior,
    )

    root = Path(directory)
    shutil.rmtree(root, ignore_errors=True)
    corpus = product_corpus(120, seed=4)
    encoder, decoder = optimus_dirs()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vae = optimus_train(corpus, config=OptimusTrainConfig(**TINY_OPTIMUS), encoder_dir=encoder, decoder_dir=decoder,
                            validation_fraction=0.15)
        mu, logvar = texts_posterior(vae.parts, vae.train_texts)
        valid_mu, _ = texts_posterior(vae.parts, vae.valid_texts)
        gan = gan_train_on_latents(mu, logvar, valid_mu, config=GANTrainConfig(**TINY_OPTIMUS_GAN),
                                   decode=lambda z: latents_texts(vae.parts, z))
    finally:
        torch.set_num_threads(threads)
    optimus_checkpoint_save(root / "vae" / "tiny-optimus" / "v1" / VAE_FILE, vae,
                            encoder=settings.GENAI_KB_EMBED_MODEL, decoder=str(decoder))
    gan_checkpoint_save(root / "gan" / "tiny-optimus-gan" / "v1" / GAN_FILE, gan, vae_label="tiny-optimus@1")
    return TinyOptimus(directory=root, corpus=corpus, vae_metrics=vae.metrics, gan_metrics=gan.metrics,
                       history=vae.history)


@pytest.fixture(scope="session")
def tiny_optimus(tmp_path_factory) -> TinyOptimus:
    return tiny_optimus_train(str(tmp_path_factory.getbasetemp() / "optimus-store"))


@pytest.fixture
def optimus_genmodel(db, settings, tiny_optimus):
    """The tiny pretrained-parts VAE ``tiny-optimus@1`` (product domain: purpose copy) and its GAN
    ``tiny-optimus-gan@1`` as ready, promoted ModelVersion rows."""
    from generation.models import ModelVersion
    from workers.runtime import genmodels

    settings.GENAI_MODEL_STORE_DIR = tiny_optimus.directory
    genmodels._cache.clear()
    vae = ModelVersion.objects.create(
        family="vae", name="tiny-optimus", version=1, purpose=settings.GENAI_GENMODEL_PURPOSE,
        artifact_path="vae/tiny-optimus/v1", metrics=tiny_optimus.vae_metrics, is_default=True,
        config={"architecture": "optimus", "seed": 0, "max_words": 30, "validation_fraction": 0.15, "validation_max": 16},
    )
    gan = ModelVersion.objects.create(
        family="gan", name="tiny-optimus-gan", version=1, purpose=settings.GENAI_GENMODEL_PURPOSE,
        artifact_path="gan/tiny-optimus-gan/v1", config={"vae": "tiny-optimus@1"}, metrics=tiny_optimus.gan_metrics,
    )
    yield vae, gan
    genmodels._cache.clear()
