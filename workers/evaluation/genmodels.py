"""Evaluation of a VAE/GAN pair (``manage.py genmodel_evaluate``): perplexity under the LM,
novelty against the training set, self-BLEU diversity, and the quality/diversity curves of GAN,
prior and length-matched prior samples along a temperature sweep."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import torch
from django.conf import settings

from generation.privacy import pii_mask
from workers.ml.text_metrics import words
from workers.runners.genmodels import samples_make
from workers.runtime.genmodels import GenModel
from workers.train.genmodels import (
    corpus_sentences,
    vae_reconstruction_bleu,
)


@torch.inference_mode()
def lm_perplexity(texts: Sequence[str], *, lm_name: str | None = None, batch_size: int = 16) -> float:
    """Fluency: the perplexity of the texts under the causal LM (SmolLM2 by default), over all
    their tokens, each text scored from the tokenizer's start-of-text token."""
    from workers.runtime.models import lm_get

    lm = lm_get(lm_name)
    tokenizer, model = lm.tokenizer, lm.model
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [[start_id] + tokenizer(t, add_special_tokens=False)["input_ids"][:128] for t in texts if t.strip()]
    if not encoded:
        return float("inf")
    encoded.sort(key=len)
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.full((len(chunk), width), start_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, row in enumerate(chunk):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
        target_mask = mask[:, 1:].float()
        total_nll += float((nll * target_mask).sum())
        total_tokens += int(target_mask.sum())
    return math.exp(total_nll / max(1, total_tokens))


def text_set_figures(texts: Sequence[str], *, train_hashes: set[str], lm_name: str | None) -> dict[str, Any]:
    """Quality and diversity of a set of texts: distinct-1/2, self-BLEU, novelty (share not a
    training sentence), fluency (LM perplexity), mean words, share empty."""
    from workers.ml.text_metrics import distinct_n, novelty, self_bleu

    non_empty = [t for t in texts if t.strip()]
    return {
        "n": len(texts),
        "empty_share": round(1 - len(non_empty) / max(1, len(texts)), 4),
        "mean_words": round(sum(len(words(t)) for t in non_empty) / max(1, len(non_empty)), 2),
        "distinct_1": round(distinct_n(non_empty, 1), 4),
        "distinct_2": round(distinct_n(non_empty, 2), 4),
        "self_bleu": round(self_bleu(non_empty), 4),
        "novelty": round(novelty(non_empty, train_hashes), 4),
        "fluency_ppl": round(lm_perplexity(non_empty, lm_name=lm_name), 2),
    }


def fluency_matched_diversity(curves: dict[str, list[dict[str, Any]]], *, prior_key: str = "vae_prior") -> list[dict[str, Any]]:
    """The comparison "Language GANs Falling Short" (Caccia et al. 2020) asks for: each GAN point
    of a temperature sweep against the prior's self-BLEU at the same fluency, read off the prior's
    curve (``curves[prior_key]``, linear in log perplexity between its two nearest points). A GAN
    point outside the prior's fluency range has no counterpart (``prior_self_bleu`` None)."""
    prior = sorted(
        ((math.log(p["fluency_ppl"]), p["self_bleu"]) for p in curves.get(prior_key, []) if math.isfinite(p["fluency_ppl"])),
    )
    rows = []
    for point in curves.get("gan", []):
        ppl = point["fluency_ppl"]
        matched = None
        if prior and math.isfinite(ppl) and prior[0][0] <= math.log(ppl) <= prior[-1][0]:
            x = math.log(ppl)
            for (x0, y0), (x1, y1) in zip(prior, prior[1:] or prior, strict=True):
                if x0 <= x <= x1:
                    matched = y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
                    break
        rows.append({
            "temperature": point["temperature"], "gan_fluency_ppl": ppl, "gan_self_bleu": point["self_bleu"],
            "prior_self_bleu": None if matched is None else round(matched, 4),
            "gan_more_diverse": None if matched is None else point["self_bleu"] < matched,
        })
    return rows


def length_matched(pool: Sequence[str], lengths: Sequence[int]) -> list[str]:
    """Texts of ``pool`` with the given word counts, one per entry of ``lengths`` (the nearest count
    left where none of that count is; each pool text used once; fewer when the pool runs out)."""
    by_length: dict[int, list[str]] = {}
    for text in pool:
        by_length.setdefault(len(words(text)), []).append(text)
    out = []
    for length in lengths:
        left = [count for count, texts in by_length.items() if texts]
        if not left:
            break
        nearest = min(left, key=lambda count: (abs(count - length), count))
        out.append(by_length[nearest].pop())
    return out


def genmodel_sweep(
    *, model: GenModel, temperatures: Sequence[float], samples: int, seed: int, lm_name: str | None,
    length_matched_pool: int = 0,
) -> dict[str, Any]:
    """Quality/diversity curves of the prior and the GAN over sampled decoding at each temperature
    (the same seeds for both), and the GAN's points against the prior's at equal fluency.

    ``length_matched_pool`` (k > 0) adds a third curve: at each temperature, k x ``samples`` prior
    texts from which as many as the GAN made are picked with the GAN's sentence lengths
    (``length_matched``), and the GAN against that curve at equal fluency: self-BLEU and per-token
    perplexity both fall with sentence length, so a generator of longer sentences looks more
    diverse and more fluent for its length alone."""
    with_gan = model.gan is not None
    curves: dict[str, list[dict[str, Any]]] = {"vae_prior": [], **({"gan": []} if with_gan else {})}
    if with_gan and length_matched_pool:
        curves["vae_prior_length_matched"] = []
    keys = ("self_bleu", "fluency_ppl", "distinct_2", "novelty", "mean_words")

    def point(texts: list[str], temperature: float) -> dict[str, Any]:
        figures = text_set_figures(texts, train_hashes=model.train_text_hashes, lm_name=lm_name)
        return {"temperature": temperature, **{k: figures[k] for k in keys}}

    def texts_of(source: str, n: int, temperature: float, sample_seed: int) -> list[str]:
        return [item["text"] for item in samples_make(
            n=n, source=source, decoding="sample", temperature=temperature, seed=sample_seed, model=model)]

    for temperature in sorted(temperatures):
        curves["vae_prior"].append(point(texts_of("prior", samples, temperature, seed), temperature))
        if not with_gan:
            continue
        gan_texts = texts_of("gan", samples, temperature, seed)
        curves["gan"].append(point(gan_texts, temperature))
        if "vae_prior_length_matched" in curves:
            pool = texts_of("prior", length_matched_pool * samples, temperature, seed + 1)
            lengths = [len(words(t)) for t in gan_texts if t.strip()]
            curves["vae_prior_length_matched"].append(point(length_matched(pool, lengths), temperature))
    report: dict[str, Any] = {"curves": curves}
    for suffix, prior_key in (("", "vae_prior"), ("_and_length", "vae_prior_length_matched")):
        if prior_key not in curves or not with_gan:
            continue
        matched = fluency_matched_diversity(curves, prior_key=prior_key)
        comparable = [row for row in matched if row["gan_more_diverse"] is not None]
        report[f"at_equal_fluency{suffix}"] = matched
        report[f"gan_more_diverse_at_equal_fluency{suffix}"] = bool(comparable) and all(row["gan_more_diverse"] for row in comparable)
    return report


def genmodel_evaluate(
    *, model: GenModel, texts: Sequence[str], samples: int = 500, seed: int = 0, lm_name: str | None = None,
    decoding: str = "greedy", max_words: int = 30, temperature: float = 1.0, sweep: Sequence[float] = (),
    length_matched_pool: int = 0,
) -> dict[str, Any]:
    """The figures of ``manage.py genmodel_evaluate`` (docs/genmodels.md) on held-out ``texts``;
    ``temperature`` applies to ``decoding="sample"``; ``sweep`` (temperatures) adds the
    quality/diversity curves and the comparison at equal fluency (``genmodel_sweep``)."""
    from workers.train.genmodels import vae_evaluate

    sentences = corpus_sentences([pii_mask(t).text for t in texts], max_words=max_words)
    if len(sentences) < 2:
        raise ValueError(f"Need at least 2 sentences of 3 to {max_words} words to evaluate on, got {len(sentences)}.")
    rng = random.Random(seed)
    started = time.monotonic()
    ids = model.tokenizer.encode_batch(sentences)
    vae_figures = vae_evaluate(model.vae, ids, seed=seed)
    vae_figures["recon_bleu"] = vae_reconstruction_bleu(model.vae, model.tokenizer, sentences[: max(samples, 500)])
    vae_figures = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vae_figures.items()}
    sets = {
        "vae_prior": samples_make(n=samples, source="prior", decoding=decoding, temperature=temperature, seed=seed,
                                  model=model),
    }
    if model.gan is not None:
        sets["gan"] = samples_make(n=samples, source="gan", decoding=decoding, temperature=temperature, seed=seed,
                                   model=model)
    generated = {key: [item["text"] for item in items] for key, items in sets.items()}
    data = rng.sample(sentences, min(samples, len(sentences)))
    extra = {}
    if "gan" in generated and length_matched_pool:
        pool = samples_make(n=length_matched_pool * samples, source="prior", decoding=decoding, temperature=temperature,
                            seed=seed + 1, model=model)
        lengths = [len(words(t)) for t in generated["gan"] if t.strip()]
        extra["vae_prior_length_matched"] = length_matched([item["text"] for item in pool], lengths)
    figures = {
        key: text_set_figures(values, train_hashes=model.train_text_hashes, lm_name=lm_name)
        for key, values in {**generated, **extra, "data": data}.items()
    }
    for key, items in sets.items():
        scores = [item["realism"] for item in items if item["realism"] is not None]
        if scores:
            figures[key]["mean_realism"] = round(sum(scores) / len(scores), 4)
        figures[key]["examples"] = generated[key][:5]
    validation = vae_figures
    aims = {
        "kl_positive": validation["kl"] > 0,
        "most_units_active": validation["active_units"] > validation["latent_dim"] / 2,
    }
    if "gan" in figures:
        aims["gan_at_least_as_fluent_as_prior"] = figures["gan"]["fluency_ppl"] <= figures["vae_prior"]["fluency_ppl"]
        aims["gan_more_diverse_than_prior"] = figures["gan"]["self_bleu"] < figures["vae_prior"]["self_bleu"]
        aims["gan_novelty_at_least_0.9"] = figures["gan"]["novelty"] >= 0.9
    if "vae_prior_length_matched" in figures:
        matched = figures["vae_prior_length_matched"]
        aims["gan_at_least_as_fluent_as_length_matched_prior"] = figures["gan"]["fluency_ppl"] <= matched["fluency_ppl"]
        aims["gan_more_diverse_than_length_matched_prior"] = figures["gan"]["self_bleu"] < matched["self_bleu"]
    aims["prior_novelty_at_least_0.9"] = figures["vae_prior"]["novelty"] >= 0.9
    report_sweep = None
    if sweep:
        report_sweep = genmodel_sweep(model=model, temperatures=sweep, samples=samples, seed=seed, lm_name=lm_name,
                                      length_matched_pool=length_matched_pool)
        for key in ("gan_more_diverse_at_equal_fluency", "gan_more_diverse_at_equal_fluency_and_length"):
            if key in report_sweep:
                aims[key] = report_sweep[key]
    return {
        "model": model.label,
        "evaluated_sentences": len(sentences),
        "validation": validation,
        "samples": figures,
        "aims": aims,
        "decoding": decoding,
        "temperature": temperature if decoding == "sample" else None,
        "lm": lm_name or settings.GENAI_LM_MODEL,
        "sweep": report_sweep,
        "seconds": round(time.monotonic() - started, 1),
    }
