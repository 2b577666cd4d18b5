"""The sentence VAE and latent GAN at work: training jobs, and the ``variants``, ``interpolate``,
``sample`` and ``augment`` job kinds (docs/genmodels.md).

Models are ``ModelVersion`` rows: a ``vae`` version (``name@N``) and the ``gan`` version trained
with it (``name-gan@M``, its config names the VAE). A request names the VAE (``"name"`` or
``"name@3"``) or its domain (``product``, ``support``: the promoted, else newest, VAE of that
domain's purpose). The pair is loaded once per worker process (LRU of
``GENAI_GENMODEL_CACHE_SIZE``) on the worker's device. Two architectures answer to the same
operations (``texts_encode``, ``latents_decode``): the pretrained sentence VAE
(``workers.ml.optimus``: MiniLM encoder, SmolLM2 decoder with LoRA, merged for inference; bf16
autocast on a GPU) and the earlier GRU VAE (``workers.ml.vae``), kept so that evaluations can
compare the two in one run.

Scores: ``realism`` is the GAN critic's score of a text's posterior mean, standardised by the
critic's scores of the validation sentences (0 = as real as a typical sentence of the corpus;
negative = less), and ``realism_p`` its logistic squashing into (0, 1). ``novelty`` of a variant
is 1 - BLEU against the source text.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.text.product_names import ProductNames, delexicalise, has_slots, names_read, relexicalise
from generation.text.sentences import sentences_split
from workers.ml.gan import LatentGAN
from workers.ml.text_metrics import broken_reason, text_words, tokenizer_words, unfinished
from workers.ml.text_tokenizer import TextTokenizer
from workers.ml.vae import SentenceVAE
from workers.runtime.cache import ModelCache
from workers.train.genmodels import (
    GAN_FILE,
    VAE_FILE,
    gan_checkpoint_load,
    vae_checkpoint_load,
)
from workers.train.optimus import OptimusParts, latents_texts, optimus_checkpoint_load, texts_posterior

logger = logging.getLogger(__name__)

DECODINGS = ("greedy", "sample", "beam")


# --- loading --------------------------------------------------------------------------------


@dataclass
class GenModel:
    """A VAE and (when one was trained with it) its GAN, loaded on one device. ``parts`` holds a
    pretrained (Optimus) VAE; ``vae`` and ``tokenizer`` a GRU one."""

    vae: SentenceVAE | None
    tokenizer: TextTokenizer | None
    vae_label: str
    train_text_hashes: set[str]
    gan: LatentGAN | None
    gan_label: str
    critic_real_mean: float
    critic_real_std: float
    device: torch.device
    parts: OptimusParts | None = None
    amp_dtype: str = ""
    purpose: str = ""
    # The words a decoded text may use (its training sentences' and its tokenizers' whole words):
    # a sentence with another word invented a name or broke one ("Vergo", "Sourdella") and is
    # dropped (``text_broken``). None: a checkpoint saved without its words (only brackets and
    # letters repeated thrice are checked then).
    known_words: frozenset[str] | None = None
    # Trained with product names as slots ("The {name} from {brand} is ..."): a text goes in with
    # its names as slots (``model_text``) and comes out with them put back (``model_output``).
    slots: bool = False

    @property
    def architecture(self) -> str:
        return "optimus" if self.parts is not None else "gru"

    @property
    def latent_dim(self) -> int:
        return self.parts.model.config.latent_dim if self.parts is not None else self.vae.config.latent_dim

    @property
    def label(self) -> str:
        return f"{self.vae_label}+{self.gan_label}" if self.gan_label else self.vae_label


_cache: ModelCache[GenModel] = ModelCache(name="VAE/GAN", size=lambda: settings.GENAI_GENMODEL_CACHE_SIZE)


def genmodel_versions(*, name: str | None = None, gan: str | None = None, domain: str | None = None):
    """(vae ModelVersion, gan ModelVersion or None) for a request's model name or domain; (None, None): none."""
    from generation.kinds.variants import genmodel_versions_resolve

    return genmodel_versions_resolve(name or None, gan_name=gan or None, domain=domain or None)


def _device() -> torch.device:
    from workers.runtime.device import device_get

    return device_get().device


def genmodel_get(*, name: str | None = None, gan: str | None = None, domain: str | None = None) -> GenModel:
    """The process's loaded VAE (+GAN) for a request; PermanentJobError when there is none.
    ``gan`` names a GAN version of that VAE (default: its promoted, else newest); ``domain``
    (product, support) picks the domain's model when no ``name`` is given."""
    vae_row, gan_row = genmodel_versions(name=name, gan=gan, domain=domain)
    if vae_row is None:
        if name:
            raise PermanentJobError(f"No ready VAE model version named {name!r}.", code="unknown_model")
        if domain:
            raise PermanentJobError(
                f"No VAE model version of the {domain} domain exists yet: run a genmodel_train job with "
                f'"domain": "{domain}" (or manage.py genmodel_train --domain {domain}) first.',
                code="no_model",
            )
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
    path = store / vae_row.artifact_path / VAE_FILE
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("architecture") == "optimus":
            ckpt = optimus_checkpoint_load(path, payload=payload, encoder_dir=encoder_dir(payload["encoder"]),
                                           decoder_dir=decoder_dir(payload["decoder"]), device=device)
            vae, tokenizer, parts, hashes = None, None, ckpt.parts, ckpt.train_text_hashes
            slots = bool(payload.get("slots"))
            known = (frozenset(ckpt.train_words | tokenizer_words(parts.decoder_tokenizer)
                               | tokenizer_words(parts.encoder_tokenizer)) if ckpt.train_words else None)
        else:
            vae_ckpt = vae_checkpoint_load(path, device=device)
            vae, tokenizer, parts, hashes = vae_ckpt.model, vae_ckpt.tokenizer, None, vae_ckpt.train_text_hashes
            known, slots = None, False
        gan_ckpt = gan_checkpoint_load(store / gan_row.artifact_path / GAN_FILE, device=device) if gan_row else None
    except FileNotFoundError as exc:
        raise PermanentJobError(f"The files of {vae_row.label} are missing on this worker: {exc}", code="model_missing") from exc
    model = GenModel(
        vae=vae,
        tokenizer=tokenizer,
        parts=parts,
        amp_dtype="bfloat16" if device.type == "cuda" else "",
        purpose=vae_row.purpose,
        vae_label=vae_row.label,
        train_text_hashes=hashes,
        known_words=known,
        slots=slots,
        gan=gan_ckpt.gan if gan_ckpt else None,
        gan_label=gan_row.label if gan_row else "",
        critic_real_mean=gan_ckpt.critic_real_mean if gan_ckpt else 0.0,
        critic_real_std=gan_ckpt.critic_real_std if gan_ckpt else 1.0,
        device=device,
    )
    logger.info("loaded %s on %s in %.2f s", model.label, device, time.monotonic() - started)
    return model


def encoder_dir(name: str) -> Path:
    """The sentence encoder's directory for a checkpoint's encoder name (a setting's value or a path)."""
    from workers.runtime.embeddings import embed_model_path

    return embed_model_path(name)


def decoder_dir(name: str) -> Path:
    """The decoder's transformers directory for a checkpoint's decoder name (``smollm2`` or a path)."""
    from generation.lm import lm_prepare

    return lm_prepare(name)


# --- model operations -----------------------------------------------------------------------


def model_names(model: GenModel, text: str, attributes: dict | None = None) -> ProductNames:
    """The names of ``text``'s product that ``model`` writes as slots (none for a model without)."""
    return names_read(text, attributes) if model.slots else ProductNames()


def model_text(model: GenModel, text: str, names: ProductNames | None = None) -> str:
    """``text`` as ``model`` was trained to read it: its product's name and brand as slots."""
    if not model.slots:
        return text
    return delexicalise(text, names if names is not None else names_read(text))


def model_output(model: GenModel, text: str, names: ProductNames | None = None) -> str:
    """A decoded ``text`` with its slots filled: ``names``' values, else "this product" (no name
    is made up)."""
    return relexicalise(text, names or ProductNames()) if model.slots else text


def _generator(seed: int | None) -> torch.Generator:
    return torch.Generator().manual_seed(seed if seed is not None else random.SystemRandom().randrange(2**31))


@torch.inference_mode()
def texts_encode(model: GenModel, texts: Sequence[str], *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior (mu, logvar) of each text, in order."""
    if model.parts is not None:
        mu, logvar = texts_posterior(model.parts, [t or " " for t in texts])
        return mu.to(model.device), logvar.to(model.device)
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
    keep_words: Sequence[str] = (),
    anchor_words: Sequence[str] = (),
    repetition_penalty: float | None = None,
) -> list[str]:
    """``keep_words``: words the pretrained VAE's decoder is guided to write, ``anchor_words``:
    words it is nudged towards (``GENAI_GENMODEL_KEEP_RAMP``, ``GENAI_GENMODEL_KEEP_HOLD``: see
    ``OptimusVAE._guide``), ``repetition_penalty`` on words written (default
    ``GENAI_GENMODEL_REPETITION_PENALTY``; the GRU VAE's decoder is neither guided nor penalised)."""
    if model.parts is not None:
        penalty = settings.GENAI_GENMODEL_REPETITION_PENALTY if repetition_penalty is None else repetition_penalty
        return latents_texts(model.parts, z, decoding=decoding, temperature=temperature, top_k=top_k,
                             generator=generator, batch_size=min(batch_size, 64), amp_dtype=model.amp_dtype,
                             keep_words=keep_words, anchor_words=anchor_words, repetition_penalty=penalty,
                             keep_ramp=settings.GENAI_GENMODEL_KEEP_RAMP, keep_hold=settings.GENAI_GENMODEL_KEEP_HOLD)
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


_WORD = re.compile(r"[A-Za-z0-9]+")
_BRACKET = re.compile(r"[{}\[\]]")


def text_broken(model: GenModel, text: str, *, words: Sequence[str] = ()) -> str | None:
    """Why a decoded ``text`` is not fit to show, or None: ``broken_reason`` against the model's
    ``known_words`` and ``words`` (a variant's source may name what the model never saw), so
    unbalanced brackets, a letter thrice in a row or an invented word; ``slot``: a product-name
    slot left unfilled (``generation.text.product_names.relexicalise``); ``unfinished`` (no end
    mark: cut off mid-sentence); or ``fragment`` (a sentence of one or two words beside another:
    "The bracelet is made with silver-threaded wire. Everyday.", a must-keep word the decoder
    could not place). Always None with ``GENAI_GENMODEL_DROP_BROKEN`` off."""
    if not settings.GENAI_GENMODEL_DROP_BROKEN:
        return None
    # a product-name slot that could not be filled (``relexicalise``), or one a model trained with
    # slots wrote of its own ("retails at {then}", "from [brand]") where its source has none
    if has_slots(text) or (model.slots and _BRACKET.search(text) and not any(_BRACKET.search(w) for w in words)):
        return "slot"
    known = model.known_words | text_words(words) if model.known_words is not None and words else model.known_words
    return broken_reason(text, known) or ("unfinished" if unfinished(text) else None) or _fragment(text)


def _fragment(text: str) -> str | None:
    sentences = sentences_split(text)
    if len(sentences) > 1 and any(len(_WORD.findall(s)) < 3 for s in sentences):
        return "fragment"
    return None


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


