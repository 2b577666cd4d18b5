"""Evaluation of a VAE/GAN pair (``manage.py genmodel_evaluate``): the VAE's ELBO, KL, active
units and reconstruction BLEU on held-out sentences; for prior samples, GAN samples and variants
of held-out sentences: perplexity under the base LM (beside the held-out sentences' own), the
share with broken tokens, distinct-n, self-BLEU and novelty; for variants also MiniLM cosine and
BLEU to the source and must-keep retention; for interpolations, similarity to both ends along the
path; the quality/diversity curves of GAN, prior and length-matched prior samples along a
temperature sweep; a baseline model (the earlier GRU VAE) in the same run; and a sample file."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from django.conf import settings

from generation.privacy import pii_mask
from generation.text.product_names import names_read
from workers.ml.text_metrics import words
from workers.runners.genmodels import samples_make
from workers.runtime.genmodels import GenModel, model_text
from workers.train.genmodels import (
    corpus_sentences,
    vae_reconstruction_bleu,
)


@torch.inference_mode()
def _lm_nll(texts: Sequence[str], *, lm_name: str | None = None, batch_size: int = 16) -> list[tuple[float, int]]:
    """(summed NLL, scored tokens) of each text under the causal LM (SmolLM2 by default), each
    scored from the tokenizer's start-of-text token; an empty text is (0.0, 0)."""
    from workers.runtime.models import lm_get

    lm = lm_get(lm_name)
    tokenizer, model = lm.tokenizer, lm.model
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = [[start_id] + tokenizer(t, add_special_tokens=False)["input_ids"][:128] if t.strip() else [] for t in texts]
    out: list[tuple[float, int]] = [(0.0, 0)] * len(texts)
    order = sorted((i for i, ids in enumerate(encoded) if len(ids) > 1), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        chunk = [encoded[i] for i in index]
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
        sums = (nll * target_mask).sum(dim=1).tolist()
        counts = target_mask.sum(dim=1).tolist()
        for i, total, count in zip(index, sums, counts, strict=True):
            out[i] = (float(total), int(count))
    return out


def lm_perplexity(texts: Sequence[str], *, lm_name: str | None = None, batch_size: int = 16) -> float:
    """Fluency of a set: the perplexity of the texts under the causal LM over all their tokens."""
    scored = _lm_nll(texts, lm_name=lm_name, batch_size=batch_size)
    tokens = sum(n for _, n in scored)
    return math.exp(sum(total for total, _ in scored) / tokens) if tokens else float("inf")


def texts_perplexity(texts: Sequence[str], *, lm_name: str | None = None, batch_size: int = 16) -> list[float]:
    """Each text's own perplexity under the causal LM (inf for an empty text)."""
    return [math.exp(total / n) if n else float("inf") for total, n in _lm_nll(texts, lm_name=lm_name, batch_size=batch_size)]


def text_set_figures(
    texts: Sequence[str], *, train_hashes: set[str], lm_name: str | None, known_words: set[str] | None = None
) -> dict[str, Any]:
    """Quality and diversity of a set of texts: distinct-1/2, self-BLEU, novelty (share not a
    training sentence), fluency (LM perplexity), share with broken tokens (``broken_reason``),
    share cut off mid-sentence (``unfinished``), mean words, share empty."""
    from workers.ml.text_metrics import broken_share, distinct_n, novelty, self_bleu, unfinished

    non_empty = [t for t in texts if t.strip()]
    return {
        "broken_share": round(broken_share(non_empty, known_words), 4),
        "unfinished_share": round(sum(map(unfinished, non_empty)) / max(1, len(non_empty)), 4),
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


def known_words(texts: Sequence[str], *, lm_name: str | None = None) -> set[str]:
    """The vocabulary a generated word is checked against (``broken_reason``'s non-words): the
    sentence encoder's whole words (BERT's uncased vocabulary), the LM tokenizer's whole-word
    tokens and the words of ``texts`` (the held-out sentences), lower-cased. A rare real word the
    three miss counts as a non-word: the share is an upper bound."""
    from workers.ml.text_metrics import text_words, tokenizer_words
    from workers.runtime.embeddings import embed_model_path
    from workers.runtime.models import lm_get

    vocabulary: set[str] = set()
    try:
        path = embed_model_path() / "vocab.txt"
        vocabulary |= {w for w in path.read_text(encoding="utf-8").split() if w.isalpha()}
    except (OSError, RuntimeError):
        pass
    vocabulary |= tokenizer_words(lm_get(lm_name).tokenizer)
    return vocabulary | text_words(texts)


# What a marketer names when a rewrite must keep a word: the product type first, then what it is
# made of, then its colour (the copy checker's vocabularies, README's `"must_keep": ["mesh"]`).
_PICK_ORDER = ("category", "material", "colour")


def must_keep_pick(text: str) -> list[str]:
    """The must-keep word an evaluation asks a variant of ``text`` to keep, as a marketer keeps a
    product's noun: its product type, else its material, else its colour, as written there (the
    copy checker's vocabularies: "bracelet", "fleece", "graphite"); in a sentence that names none,
    its longest word of letters (5 or more; "Elasticated"); none in a sentence of short words.
    The longest word alone picked words no marketer would ("Between", "specified", "retails")."""
    import re

    from generation.text.copycheck import unsupported_claims
    from workers.runners.genmodels import keeps_words

    claims = [c for c in unsupported_claims(text, {}) if c.type in _PICK_ORDER]
    for kind in _PICK_ORDER:
        for claim in claims:
            if claim.type != kind:
                continue
            # as a common noun where the text has one ("the Bop Bar Stool ... a stool": "stool")
            written = sorted(re.findall(rf"(?<![\w-])({re.escape(claim.claim)}\w*)(?![\w-])", text, re.IGNORECASE),
                             key=lambda w: not w[:1].islower())
            if written and keeps_words(text, written[:1]):
                return [written[0] if written[0].isupper() else written[0].lower()]
    return longest_word_pick(text)


def longest_word_pick(text: str) -> list[str]:
    """The earlier evaluations' must-keep word: the longest word of letters (5 or more) of ``text``."""
    import re

    candidates = [w for w in re.findall(r"[A-Za-z]+", text) if len(w) >= 5]
    return [max(candidates, key=len)] if candidates else []


def _cosines(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """MiniLM cosine similarity of each (a, b) pair."""
    from workers.runtime.embeddings import scorer_get

    if not pairs:
        return []
    embedder = scorer_get()
    a = embedder.encode([x for x, _ in pairs])
    b = embedder.encode([y for _, y in pairs])
    return [float(v) for v in (a * b).sum(axis=1)]


def _leads_with(text: str, keep: Sequence[str]) -> bool:
    """Does a sentence of ``text`` open with a ``keep`` word?"""
    from generation.text.sentences import sentences_split

    firsts = [words(sentence)[:1] for sentence in sentences_split(text)]
    return any(first and first[0] == w.lower() for first in firsts for w in keep)


def leads_with_must_keep_share(rows: Sequence[dict[str, Any]]) -> float:
    """Share of the variants (``rows``: source, must_keep, variants) with a sentence that opens
    with a must-keep word where no sentence of their source does: guidance that pushed the word to
    the front ("Available price is 39 EUR.", "... wire. Elasticated wrists and a well-placed arm.")."""
    pairs = [(row, v) for row in rows for v in row["variants"]]
    led = sum(_leads_with(v, row["must_keep"]) and not _leads_with(row["source"], row["must_keep"]) for row, v in pairs)
    return round(led / max(1, len(pairs)), 4)


def variants_evaluate(
    model: GenModel, sources: Sequence[str], *, k: int, seed: int, lm_name: str | None, known: set[str] | None,
    pick: Callable[[str], list[str]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Variants of each source as the ``variants`` job makes them (must-keep word from
    ``must_keep_pick``, or ``pick``; the job's fluency filter): the set's figures, cosine and BLEU to the
    source, must-keep retention among the decoded candidates, and what the filters dropped."""
    from workers.ml.text_metrics import sentence_bleu
    from workers.runners.genmodels import variants_make

    rows: list[dict[str, Any]] = []
    removed: dict[str, int] = {}
    for i, source in enumerate(sources):
        must_keep = (pick or must_keep_pick)(source)
        items, counts = variants_make(text=source, k=k, must_keep=must_keep, seed=seed + i, model=model,
                                      max_perplexity=settings.GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY)
        for key, value in counts.items():
            removed[key] = removed.get(key, 0) + value
        rows.append({"source": source, "must_keep": must_keep, "variants": [item["text"] for item in items]})
    pairs = [(row["source"], v) for row in rows for v in row["variants"]]
    texts = [v for _, v in pairs]
    figures = text_set_figures(texts, train_hashes=model.train_text_hashes, lm_name=lm_name, known_words=known)
    cosines = _cosines(pairs)
    bleus = [sentence_bleu(v, [source]) for source, v in pairs]
    judged = removed.get("decoded", 0) - removed.get("empty_or_duplicate", 0)
    n = max(1, len(pairs))
    # the sources that name a product ("The X from Y is ..."): a decoder that writes *a* name
    # for them (one it invents) loses these first
    naming = [row for row in rows if names_read(row["source"])]
    figures.update({
        "sources": len(sources),
        "sources_with_k_variants": round(sum(len(r["variants"]) >= k for r in rows) / max(1, len(rows)), 4),
        "sources_with_a_variant": round(sum(bool(r["variants"]) for r in rows) / max(1, len(rows)), 4),
        "sources_naming_a_product": len(naming),
        "naming_sources_with_a_variant": round(sum(bool(r["variants"]) for r in naming) / len(naming), 4) if naming else None,
        "cosine_to_source": round(sum(cosines) / n, 4),
        "cosine_at_least_0.6_share": round(sum(c >= 0.6 for c in cosines) / n, 4),
        "bleu_to_source": round(sum(bleus) / n, 4),
        "bleu_to_source_at_most_0.6_share": round(sum(b <= 0.6 for b in bleus) / n, 4),
        # a variant that opens with its must-keep word where the source does not: the guidance
        # put it first, capitalised whatever its role ("Handle it over, pop it back")
        "leads_with_must_keep_share": leads_with_must_keep_share(rows),
        # the decoder's own: share of the decoded (new, non-empty) candidates that kept the word
        "must_keep_retention_decoded": round(1 - removed.get("missing_must_keep", 0) / judged, 4) if judged > 0 else None,
        "removed": removed,
    })
    return figures, rows


def interpolation_evaluate(model: GenModel, pairs: Sequence[tuple[str, str]], *, steps: int = 5) -> tuple[dict[str, Any], list]:
    """Greedy texts along the linear path between two held-out sentences' posterior means: the
    MiniLM similarity of the text at each step to both ends (averaged over the pairs), and the
    share of paths that move, more like the end than the start at the last step and the other way
    round at the first."""
    from workers.runners.genmodels import interpolation_make

    paths = []
    to_a: list[list[float]] = []
    to_b: list[list[float]] = []
    for a, b in pairs:
        texts = [item["text"] for item in interpolation_make(text_a=a, text_b=b, steps=steps, model=model)]
        paths.append({"a": a, "b": b, "texts": texts})
        sims = _cosines([(a, t) for t in texts] + [(b, t) for t in texts])
        to_a.append(sims[:steps])
        to_b.append(sims[steps:])
    count = max(1, len(paths))
    moves = sum(sa[0] > sb[0] and sb[-1] > sa[-1] for sa, sb in zip(to_a, to_b, strict=True))
    figures = {
        "pairs": len(paths),
        "t": [round(i / (steps - 1), 3) for i in range(steps)],
        "similarity_to_a": [round(sum(row[i] for row in to_a) / count, 4) for i in range(steps)],
        "similarity_to_b": [round(sum(row[i] for row in to_b) / count, 4) for i in range(steps)],
        "moves_share": round(moves / count, 4),
    }
    return figures, paths


def genmodel_evaluate(
    *, model: GenModel, texts: Sequence[str], samples: int = 500, seed: int = 0, lm_name: str | None = None,
    decoding: str = "greedy", max_words: int = 30, temperature: float = 1.0, sweep: Sequence[float] = (),
    length_matched_pool: int = 0, variants: int = 0, k: int = 3, interpolations: int = 0, max_sentences: int = 0,
    baseline: GenModel | None = None,
) -> dict[str, Any]:
    """The figures of ``manage.py genmodel_evaluate`` (docs/genmodels.md) on held-out ``texts``;
    ``temperature`` applies to ``decoding="sample"``; ``sweep`` (temperatures) adds the
    quality/diversity curves and the comparison at equal fluency (``genmodel_sweep``);
    ``variants`` held-out sentences get ``k`` variants each and ``interpolations`` pairs a path;
    ``max_sentences`` caps the held-out sentences (a seeded draw); ``baseline`` is evaluated the
    same way in the same run (without the sweep), under ``report["baseline"]``."""
    sentences = corpus_sentences([pii_mask(t).text for t in texts], max_words=max_words)
    if len(sentences) < 2:
        raise ValueError(f"Need at least 2 sentences of 3 to {max_words} words to evaluate on, got {len(sentences)}.")
    if max_sentences and len(sentences) > max_sentences:
        sentences = random.Random(seed).sample(sentences, max_sentences)
    started = time.monotonic()
    known = known_words(sentences, lm_name=lm_name) if (variants or interpolations or baseline) else None
    report = _model_report(model, sentences, samples=samples, seed=seed, lm_name=lm_name, decoding=decoding,
                           temperature=temperature, sweep=sweep, length_matched_pool=length_matched_pool,
                           variants=variants, k=k, interpolations=interpolations, known=known)
    if baseline is not None:
        report["baseline"] = _model_report(baseline, sentences, samples=samples, seed=seed, lm_name=lm_name,
                                           decoding=decoding, temperature=temperature, sweep=(), length_matched_pool=0,
                                           variants=variants, k=k, interpolations=interpolations, known=known)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def _model_report(
    model: GenModel, sentences: list[str], *, samples: int, seed: int, lm_name: str | None, decoding: str,
    temperature: float, sweep: Sequence[float], length_matched_pool: int, variants: int, k: int, interpolations: int,
    known: set[str] | None,
) -> dict[str, Any]:
    from workers.train.genmodels import vae_evaluate

    rng = random.Random(seed)
    started = time.monotonic()
    if model.parts is not None:
        from workers.train.optimus import optimus_evaluate, optimus_reconstruction_bleu

        # as the model reads them: a product's names as slots when it was trained so
        read = [model_text(model, sentence) for sentence in sentences]
        vae_figures = optimus_evaluate(model.parts, read, seed=seed, amp_dtype=model.amp_dtype)
        vae_figures["recon_bleu"] = optimus_reconstruction_bleu(model.parts, read[: max(samples, 200)],
                                                                amp_dtype=model.amp_dtype)
    else:
        vae_figures = vae_evaluate(model.vae, model.tokenizer.encode_batch(sentences), seed=seed)
        vae_figures["recon_bleu"] = vae_reconstruction_bleu(model.vae, model.tokenizer, sentences[: max(samples, 500)])
    vae_figures = {k_: (round(v, 4) if isinstance(v, float) else v) for k_, v in vae_figures.items()}
    dropped: dict[str, dict[str, int]] = {"vae_prior": {}, "gan": {}}
    sets = {
        "vae_prior": samples_make(n=samples, source="prior", decoding=decoding, temperature=temperature, seed=seed,
                                  model=model, removed=dropped["vae_prior"]),
    }
    if model.gan is not None:
        sets["gan"] = samples_make(n=samples, source="gan", decoding=decoding, temperature=temperature, seed=seed,
                                   model=model, removed=dropped["gan"])
    generated = {key: [item["text"] for item in items] for key, items in sets.items()}
    data = rng.sample(sentences, min(samples, len(sentences)))
    extra = {}
    if "gan" in generated and length_matched_pool:
        pool = samples_make(n=length_matched_pool * samples, source="prior", decoding=decoding, temperature=temperature,
                            seed=seed + 1, model=model)
        lengths = [len(words(t)) for t in generated["gan"] if t.strip()]
        extra["vae_prior_length_matched"] = length_matched([item["text"] for item in pool], lengths)
    figures = {
        key: text_set_figures(values, train_hashes=model.train_text_hashes, lm_name=lm_name, known_words=known)
        for key, values in {**generated, **extra, "data": data}.items()
    }
    for key, items in sets.items():
        # what the job dropped and decoded again: the decoder's own broken share, before that filter
        counts = dropped[key]
        figures[key]["broken_before_filter"] = round(counts["broken"] / counts["decoded"], 4) if counts["decoded"] else None
        scores = [item["realism"] for item in items if item["realism"] is not None]
        if scores:
            figures[key]["mean_realism"] = round(sum(scores) / len(scores), 4)
        figures[key]["examples"] = generated[key][:5]
    sample = {key: values[:10] for key, values in {**generated, "data": data}.items()}
    if variants:
        sources = rng.sample(sentences, min(variants, len(sentences)))
        figures["variants"], rows = variants_evaluate(model, sources, k=k, seed=seed, lm_name=lm_name, known=known)
        sample["variants"] = rows[:10]
    interpolation = None
    if interpolations:
        ends = rng.sample(sentences, min(2 * interpolations, len(sentences) - len(sentences) % 2))
        interpolation, paths = interpolation_evaluate(model, list(zip(ends[0::2], ends[1::2], strict=True)))
        sample["interpolation"] = paths[:2]
    validation = vae_figures
    aims = {
        "kl_positive": validation["kl"] > 0,
        "most_units_active": validation["active_units"] > validation["latent_dim"] / 2,
    }
    data_ppl = figures["data"]["fluency_ppl"]
    for key in ("vae_prior", "gan", "variants"):
        if key in figures:
            aims[f"{key}_perplexity_at_most_1.5x_held_out"] = figures[key]["fluency_ppl"] <= 1.5 * data_ppl
            aims[f"{key}_broken_under_2%"] = figures[key]["broken_share"] < 0.02
    if "variants" in figures:
        v = figures["variants"]
        aims["variants_keep_must_keep_90%"] = (v["must_keep_retention_decoded"] or 0) >= 0.9
        aims["variants_similar_to_source"] = v["cosine_to_source"] >= 0.6
        aims["variants_differ_from_source"] = v["bleu_to_source"] <= 0.6
    if interpolation:
        aims["interpolation_moves"] = interpolation["moves_share"] >= 0.5
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
        "architecture": model.architecture,
        "evaluated_sentences": len(sentences),
        "validation": validation,
        "samples": figures,
        "interpolation": interpolation,
        "aims": aims,
        "decoding": decoding,
        "temperature": temperature if decoding == "sample" else None,
        "lm": lm_name or settings.GENAI_LM_MODEL,
        "sweep": report_sweep,
        "sample": sample,
        "seconds": round(time.monotonic() - started, 1),
    }


def sample_markdown(report: dict[str, Any]) -> str:
    """The sample file of ``genmodel_evaluate --sample-out``: 10 texts of each kind per model, to read."""
    lines = ["# Sentence VAE / GAN sample", ""]
    for title, part in (("Model", report), ("Baseline", report.get("baseline"))):
        if not part:
            continue
        sample = part["sample"]
        lines += [f"## {title}: {part['model']} ({part['architecture']})", ""]
        for key, heading in (("data", "Held-out sentences (reference)"), ("vae_prior", "Prior samples, z ~ N(0, I)"),
                             ("gan", "GAN samples")):
            if key in sample:
                lines += [f"### {heading}", ""] + [f"{i}. {t}" for i, t in enumerate(sample[key], 1)] + [""]
        if "variants" in sample:
            lines += ["### Variants (must-keep word in brackets)", ""]
            for i, row in enumerate(sample["variants"], 1):
                lines.append(f"{i}. {row['source']} [{', '.join(row['must_keep']) or '-'}]")
                lines += [f"    - {v}" for v in row["variants"]] or ["    - (none kept)"]
            lines.append("")
        if "interpolation" in sample:
            lines += ["### Interpolation (t = 0 ... 1)", ""]
            for row in sample["interpolation"]:
                lines += [f"- A: {row['a']}", f"- B: {row['b']}"]
                lines += [f"    {i}. {t}" for i, t in enumerate(row["texts"])]
            lines.append("")
    return "\n".join(lines) + "\n"
