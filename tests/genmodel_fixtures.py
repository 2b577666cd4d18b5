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
