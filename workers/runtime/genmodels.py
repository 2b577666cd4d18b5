"""The sentence VAE and latent GAN at work: training jobs, and the ``variants``, ``interpolate``,
``sample`` and ``augment`` job kinds (docs/genmodels.md).

Models are ``ModelVersion`` rows: a ``vae`` version (``name@N``) and the ``gan`` version trained
with it (``name-gan@M``, its config names the VAE). A request names the VAE (``"name"`` or
``"name@3"``); none: the promoted VAE of ``GENAI_GENMODEL_PURPOSE``, else the newest one. The pair
is loaded once per worker process (LRU of ``GENAI_GENMODEL_CACHE_SIZE``), in float32 on the
worker's device.

Scores: ``realism`` is the GAN critic's score of a text's posterior mean, standardised by the
critic's scores of the validation sentences (0 = as real as a typical sentence of the corpus;
negative = less), and ``realism_p`` its logistic squashing into (0, 1). ``novelty`` of a variant
is 1 - BLEU against the source text.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings

from generation.exceptions import PermanentJobError
from workers.ml.gan import LatentGAN
from workers.ml.text_tokenizer import TextTokenizer
from workers.ml.vae import SentenceVAE
from workers.runtime.cache import ModelCache
from workers.train.genmodels import (
    GAN_FILE,
    VAE_FILE,
    gan_checkpoint_load,
    vae_checkpoint_load,
)

logger = logging.getLogger(__name__)

DECODINGS = ("greedy", "sample", "beam")


# --- loading --------------------------------------------------------------------------------


@dataclass
class GenModel:
    """A VAE and (when one was trained with it) its GAN, loaded on one device."""

    vae: SentenceVAE
    tokenizer: TextTokenizer
    vae_label: str
    train_text_hashes: set[str]
    gan: LatentGAN | None
    gan_label: str
    critic_real_mean: float
    critic_real_std: float
    device: torch.device

    @property
    def label(self) -> str:
        return f"{self.vae_label}+{self.gan_label}" if self.gan_label else self.vae_label


_cache: ModelCache[GenModel] = ModelCache(name="VAE/GAN", size=lambda: settings.GENAI_GENMODEL_CACHE_SIZE)


def genmodel_versions(*, name: str | None = None, gan: str | None = None):
    """(vae ModelVersion, gan ModelVersion or None) for a request's model name; (None, None): none."""
    from generation.kinds.variants import genmodel_versions_resolve

    return genmodel_versions_resolve(name or None, gan_name=gan or None)


def _device() -> torch.device:
    from workers.runtime.device import device_get

    return device_get().device


def genmodel_get(*, name: str | None = None, gan: str | None = None) -> GenModel:
    """The process's loaded VAE (+GAN) for a request; PermanentJobError when there is none.
    ``gan`` names a GAN version of that VAE (default: its promoted, else newest)."""
    vae_row, gan_row = genmodel_versions(name=name, gan=gan)
    if vae_row is None:
        if name:
            raise PermanentJobError(f"No ready VAE model version named {name!r}.", code="unknown_model")
        raise PermanentJobError(
            "No VAE model version exists yet: run a genmodel_train job (or manage.py genmodel_train) first.",
            code="no_model",
        )
    if gan and gan_row is None:
        raise PermanentJobError(f"No ready GAN model version {gan!r} trained on {vae_row.label}.", code="unknown_model")
    key = (vae_row.pk, gan_row.pk if gan_row else None)
    return _cache.get(key, lambda: _load(vae_row, gan_row))


def _load(vae_row, gan_row) -> GenModel:
    store = Path(settings.GENAI_MODEL_STORE_DIR)
    device = _device()
    started = time.monotonic()
    try:
        vae_ckpt = vae_checkpoint_load(store / vae_row.artifact_path / VAE_FILE, device=device)
        gan_ckpt = gan_checkpoint_load(store / gan_row.artifact_path / GAN_FILE, device=device) if gan_row else None
    except FileNotFoundError as exc:
        raise PermanentJobError(f"The files of {vae_row.label} are missing on this worker: {exc}", code="model_missing") from exc
    model = GenModel(
        vae=vae_ckpt.model,
        tokenizer=vae_ckpt.tokenizer,
        vae_label=vae_row.label,
        train_text_hashes=vae_ckpt.train_text_hashes,
        gan=gan_ckpt.gan if gan_ckpt else None,
        gan_label=gan_row.label if gan_row else "",
        critic_real_mean=gan_ckpt.critic_real_mean if gan_ckpt else 0.0,
        critic_real_std=gan_ckpt.critic_real_std if gan_ckpt else 1.0,
        device=device,
    )
    logger.info("loaded %s on %s in %.2f s", model.label, device, time.monotonic() - started)
    return model


# --- model operations -----------------------------------------------------------------------


def _generator(seed: int | None) -> torch.Generator:
    return torch.Generator().manual_seed(seed if seed is not None else random.SystemRandom().randrange(2**31))


@torch.inference_mode()
def texts_encode(model: GenModel, texts: Sequence[str], *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior (mu, logvar) of each text, in order."""
    mus, logvars = [], []
    for start in range(0, len(texts), batch_size):
        ids = model.tokenizer.encode_batch([t or " " for t in texts[start : start + batch_size]])
        batch, lengths = model.vae.batch_make(ids, model.device)
        mu, logvar = model.vae.encode(batch, lengths)
        mus.append(mu.float())
        logvars.append(logvar.float())
    return torch.cat(mus), torch.cat(logvars)


@torch.inference_mode()
def latents_decode(
    model: GenModel,
    z: torch.Tensor,
    *,
    decoding: str = "greedy",
    temperature: float = 1.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> list[str]:
    out: list[str] = []
    for start in range(0, z.size(0), batch_size):
        ids = model.vae.generate(
            z[start : start + batch_size].to(model.device),
            strategy=decoding,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
        )
        out += model.tokenizer.decode_batch(ids)
    return out


@torch.inference_mode()
def realism_scores(model: GenModel, texts: Sequence[str]) -> list[float | None]:
    """The critic's standardised score of each text's posterior mean (None without a GAN)."""
    if model.gan is None or not texts:
        return [None] * len(texts)
    mu, _ = texts_encode(model, texts)
    scores = model.gan.critic_score(mu)
    return [float(s) for s in (scores - model.critic_real_mean) / model.critic_real_std]


# --- variants, interpolation, samples -------------------------------------------------------


# --- augmentation ---------------------------------------------------------------------------


# --- input corpora --------------------------------------------------------------------------


# --- job runners ----------------------------------------------------------------------------


# --- evaluation -----------------------------------------------------------------------------


