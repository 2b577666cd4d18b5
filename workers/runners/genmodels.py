"""Runners of the VAE/GAN kinds that generate: ``variants`` (rewrites of a text that keep its
must-keep words), ``interpolate`` (sentences between two texts), ``sample`` (GAN or prior
samples) and ``augment`` (synthetic labelled rows for scarce classes). The loaded models come from
``workers.runtime.genmodels`` (the job's domain's, or the one it names); candidates are ranked by
the GAN critic's realism score. Variants that fail the copy checker (against the product's
attributes when the job gives them; a product model's variants always against their source text,
so a poncho's variant is not "a knit scarf in beige") or are not fluent (perplexity under the base LM above
GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY) are dropped before ranking."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from django.conf import settings

from generation.exceptions import PermanentJobError
from generation.privacy import pii_mask
from generation.runner import CandidateResult, JobResult, RunnerContext
from generation.text.product_names import has_slots, slot_words
from generation.text.repetition import looping
from workers.ml.text_metrics import sentence_bleu, text_key
from workers.runners.genmodel_train import _columns_check, csv_rows
from workers.runtime.genmodels import (
    GenModel,
    _generator,
    genmodel_get,
    latents_decode,
    model_names,
    model_output,
    model_text,
    realism_scores,
    text_broken,
    texts_encode,
)


def _squash(value: float | None) -> float:
    return 0.5 if value is None else 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, value))))


def keeps_words(text: str, words: Sequence[str]) -> bool:
    return all(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) for word in words)


# The source's claims a product variant is nudged to repeat: what the product is, is made of and
# looks like (its names, numbers and sizes are left to the must-keep words).
ANCHOR_CLAIMS = ("category", "material", "colour")


def variant_anchors(text: str, must_keep: Sequence[str] = ()) -> list[str]:
    """The words of ``text`` that name its product type, material or colour (the copy checker's
    vocabularies), as written there, less the ``must_keep`` words: the decoder is nudged to write
    them so that a product's variant stays that product."""
    from generation.text.copycheck import unsupported_claims

    taken = {word.lower() for word in must_keep}
    out: list[str] = []
    for claim in unsupported_claims(text, {}):
        word = claim.claim
        if claim.type in ANCHOR_CLAIMS and word.lower() not in taken and keeps_words(text, [word]):
            taken.add(word.lower())
            out.append(word)
    return out


@lru_cache(maxsize=1)
def product_types() -> frozenset[str]:
    """The product types a product variant may be said to be (``copycheck.changed_types``): the
    copy checker's category nouns and the head noun of every category of the copy corpus
    ("gimbal", "handpan", "cajon", "mat"), so a stool said to be "a floor mat" is caught."""
    from django.core.management.base import CommandError

    from generation.management.commands.copy_corpus import CORPUS_DIR, corpus_read
    from generation.text.copycheck import CATEGORIES, words

    try:
        rows = corpus_read(CORPUS_DIR)
    except CommandError:  # a deployment without the corpus checks the built-in nouns
        rows = []
    heads = {noun for row in rows if (category := str(row["attributes"].get("category") or "").strip())
             for noun in words(category.split()[-1])}
    return frozenset(heads | set(CATEGORIES))


def variant_rejection(
    candidate: str, *, attributes: dict | None, max_perplexity: float | None, perplexity: float | None,
    similarity: float | None = None, bleu: float | None = None, model: GenModel | None = None, source: str = "",
    grounded: bool = False,
) -> str | None:
    """Why a decoded variant is dropped (``broken``: a word neither the ``model`` nor its
    tokenizers nor the ``source`` text know, unbalanced brackets, cut off mid-sentence, ``text_broken``; ``copy_check``: an unsupported claim, a repeated 4-gram
    or a template tail, against the product's attributes (and the words of its ``source``);
    ``ungrounded``, with ``grounded`` and no attributes: the same check against the ``source``
    alone, so a product type, material, colour, size, number or name the source does not state
    (a poncho rewritten as "a knit scarf in beige"; a stool said to be "a floor mat",
    ``changed_types`` over ``product_types``), or a name it alters (``altered_names``: "the
    Jetset Satin" of the Jetset Bomber in satin); ``not_fluent``: perplexity under the
    base LM above ``max_perplexity``; ``drifted``: MiniLM cosine to the source below
    ``GENAI_GENMODEL_VARIANT_MIN_SIMILARITY``, another product or topic; ``too_close``: BLEU to
    the source above ``GENAI_GENMODEL_VARIANT_MAX_BLEU``, the source reworded by a word or two), or None."""
    if model is not None and text_broken(model, candidate, words=[source]):
        return "broken"
    if attributes or (grounded and source):
        from generation.text.copycheck import altered_names, changed_types, copy_check

        extra = [source] if source else []
        if not copy_check(candidate, attributes or {}, extra_texts=extra, min_coverage=0.0).passed:
            return "copy_check" if attributes else "ungrounded"
        if grounded and source and (altered_names(candidate, source) or changed_types(candidate, source, product_types())):
            return "ungrounded"
    if max_perplexity is not None and perplexity is not None and not perplexity <= max_perplexity:
        return "not_fluent"
    if similarity is not None and similarity < settings.GENAI_GENMODEL_VARIANT_MIN_SIMILARITY:
        return "drifted"
    if bleu is not None and bleu > settings.GENAI_GENMODEL_VARIANT_MAX_BLEU:
        return "too_close"
    return None


def variants_make(
    *,
    text: str,
    k: int,
    must_keep: Sequence[str] = (),
    spread: float = 1.0,
    decoding: str = "greedy",
    temperature: float = 0.8,
    seed: int | None = None,
    attributes: dict | None = None,
    max_perplexity: float | None = None,
    model: GenModel,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """k rewrites of ``text`` decoded from latents around its posterior (the decoder guided to
    write the ``must_keep`` words and, with a product model, nudged towards the ``variant_anchors``
    of the text); candidates missing a ``must_keep`` word, empty ones, copies
    of the text and duplicates are removed, and so are those ``variant_rejection`` rejects (the
    copy checker with ``attributes``, and a product model's against the text itself; perplexity under the base LM above ``max_perplexity``, when
    given: each kept variant carries its ``perplexity``; drifted from the source's meaning or
    too close to its words). The rest are ranked as a rewrite should be: mostly by how much of
    the source's meaning they keep (``similarity``, MiniLM cosine), then by realism and by how
    differently they say it (``novelty``, 1 - BLEU). Returns (variants, counts of what was removed)."""
    from workers.evaluation.genmodels import texts_perplexity
    from workers.runtime.embeddings import scorer_get

    generator = _generator(seed)
    embedder = scorer_get()
    source_vector = embedder.encode([text])[0]
    similarities: dict[str, float] = {}
    # a model trained with names as slots reads "The {name} from {brand} ..." and writes slots
    # that get the source's names back; a must-keep word of a name is guided as its slot
    names = model_names(model, text, attributes)
    mu, logvar = texts_encode(model, [model_text(model, text, names)])
    guided = slot_words(list(must_keep), names) if names else list(must_keep)
    as_decoded: dict[str, str] = {}
    std = torch.exp(0.5 * logvar)
    source_key = text_key(text)
    seen = {source_key}
    kept: list[str] = []
    perplexities: dict[str, float] = {}
    removed = {"empty_or_duplicate": 0, "missing_must_keep": 0, "broken": 0, "copy_check": 0, "ungrounded": 0,
               "not_fluent": 0, "drifted": 0, "too_close": 0, "decoded": 0}
    # A product model's variant states nothing its source does not (the copy checker's claims).
    grounded = model.purpose == settings.GENAI_GENMODEL_PURPOSE
    anchors = variant_anchors(text, must_keep) if grounded else []
    # Widen the search while too few survive (must-keep words make most latents fail).
    for round_index in range(4):
        n = max(4 * k, 16) * (2**round_index)
        eps = torch.randn(n, mu.size(1), generator=generator).to(mu.device)
        scale = spread * (1.0 + 0.5 * round_index)
        z = mu + scale * std * eps
        decoded = latents_decode(model, z, decoding=decoding, temperature=temperature, generator=generator,
                                 keep_words=guided, anchor_words=anchors)
        removed["decoded"] += len(decoded)
        fresh = []
        for raw in decoded:
            candidate = model_output(model, raw, names)
            as_decoded.setdefault(candidate, raw)
            key = text_key(candidate)
            if not key or key in seen:
                removed["empty_or_duplicate"] += 1
                continue
            seen.add(key)
            if must_keep and not keeps_words(candidate, must_keep):
                removed["missing_must_keep"] += 1
                continue
            fresh.append(candidate)
        if max_perplexity is not None and fresh:
            perplexities.update(zip(fresh, texts_perplexity(fresh), strict=True))
        if fresh:
            similarities.update(zip(fresh, (float(v) for v in embedder.encode(fresh) @ source_vector), strict=True))
        for candidate in fresh:
            reason = variant_rejection(candidate, attributes=attributes, max_perplexity=max_perplexity,
                                       perplexity=perplexities.get(candidate), similarity=similarities[candidate],
                                       bleu=sentence_bleu(candidate, [text]), model=model, source=text,
                                       grounded=grounded)
            if reason:
                removed[reason] += 1
            else:
                kept.append(candidate)
        if len(kept) >= 2 * k:
            break
    realism = realism_scores(model, [as_decoded[candidate] for candidate in kept])
    ranked = []
    for candidate, real in zip(kept, realism, strict=True):
        novelty = 1.0 - sentence_bleu(candidate, [text])
        similarity = similarities[candidate]
        ranked.append(
            {
                "text": candidate,
                "score": 0.5 * similarity + 0.25 * _squash(real) + 0.25 * novelty,
                "similarity": round(similarity, 4),
                "realism": real,
                "novelty": novelty,
                **({"perplexity": round(perplexities[candidate], 2)} if candidate in perplexities else {}),
            }
        )
    ranked.sort(key=lambda item: -item["score"])
    return ranked[:k], removed


def interpolation_make(
    *, text_a: str, text_b: str, steps: int, path: str = "linear", model: GenModel
) -> list[dict[str, Any]]:
    """``steps`` sentences decoded (greedy) from evenly spaced points between the two texts'
    posterior means, both ends included; ``slerp`` follows the great circle (a path that keeps
    the latent norm, where the prior's mass is). A model with name slots writes the first text's
    names in the first half of the path and the second's after."""
    names = (model_names(model, text_a), model_names(model, text_b))
    mu, _ = texts_encode(model, [model_text(model, text_a, names[0]), model_text(model, text_b, names[1])])
    a, b = mu[0], mu[1]
    points = []
    for i in range(steps):
        t = i / (steps - 1) if steps > 1 else 0.0
        if path == "slerp":
            omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0))
            if float(omega) < 1e-4:
                points.append((1 - t) * a + t * b)
            else:
                so = torch.sin(omega)
                points.append(torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b)
        else:
            points.append((1 - t) * a + t * b)
    z = torch.stack(points)
    decoded = latents_decode(model, z, decoding="greedy")
    realism = realism_scores(model, decoded)
    out = []
    for i, (raw, real) in enumerate(zip(decoded, realism, strict=True)):
        t = i / (steps - 1) if steps > 1 else 0.0
        out.append({"text": model_output(model, raw, names[t > 0.5]), "t": round(t, 4), "realism": real})
    return out


def samples_make(
    *, n: int, source: str, decoding: str = "greedy", temperature: float = 1.0, seed: int | None = None, model: GenModel,
    removed: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """n texts from the GAN's generator (``source="gan"``) or the VAE's N(0, I) prior. A latent
    that decodes to nothing printable (spaces only) or to a broken text (``text_broken``: an
    invented word, unbalanced brackets, cut off mid-sentence) is replaced by another (three more
    rounds at most, each drawing twice as many, so fewer than n may come back). ``removed``: counts ``decoded`` and ``broken`` into it."""
    if source == "gan" and model.gan is None:
        raise PermanentJobError(f"{model.vae_label} has no GAN; sample from the prior.", code="no_gan")
    generator = _generator(seed)
    counts = removed if removed is not None else {}
    counts.setdefault("decoded", 0)
    counts.setdefault("broken", 0)
    texts: list[str] = []
    as_decoded: dict[str, str] = {}
    for round_index in range(4):
        missing = n - len(texts)
        if missing <= 0:
            break
        draws = missing * 2**round_index  # more each round when many are dropped
        with torch.inference_mode():
            if source == "gan":
                z = model.gan.sample(draws, generator=generator)
            else:
                z = torch.randn(draws, model.latent_dim, generator=generator).to(model.device)
        for raw in latents_decode(model, z, decoding=decoding, temperature=temperature, generator=generator):
            if not raw.strip():
                continue
            counts["decoded"] += 1
            text = model_output(model, raw)  # no product: a name slot reads "this product"
            if text_broken(model, text):
                counts["broken"] += 1
                continue
            as_decoded.setdefault(text, raw)
            texts.append(text)
    texts = texts[:n]
    realism = realism_scores(model, [as_decoded[text] for text in texts])
    return [{"text": text, "realism": real} for text, real in zip(texts, realism, strict=True)]


def augment_examples(
    *, texts: list[str], labels: list[str], per_class: int, seed: int = 0, domain: str | None = None
) -> list[tuple[str, str]]:
    """``per_class`` synthetic (text, label) examples for each label, decoded from that class's
    latent region, with the promoted (else newest) VAE, ranked by the GAN critic's realism.

    The region: random points between two posterior means of the class (or around one when the
    class has a single text) plus posterior noise. A candidate is kept when it is not empty, not
    a copy of any input text or of another candidate, does not loop (``looping``: a weak decoder's
    "the the the" would be training data), and (with two or more classes) its own
    posterior mean lies nearer its class's centroid than any other class's (label consistency);
    the best ``per_class`` by realism are returned (fewer when too few pass after 4 rounds)."""
    if len(texts) != len(labels):
        raise ValueError("texts and labels must have the same length")
    if per_class <= 0 or not texts:
        return []
    model = genmodel_get(name=None, domain=domain)
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    mu, logvar = texts_encode(model, [model_text(model, text) for text in texts])
    std = torch.exp(0.5 * logvar)
    classes = sorted(set(labels))
    members = {label: [i for i, lab in enumerate(labels) if lab == label] for label in classes}
    centroids = torch.stack([mu[members[label]].mean(dim=0) for label in classes])
    seen = {text_key(t) for t in texts}
    as_decoded: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for label in classes:
        index = members[label]
        kept: list[str] = []
        for round_index in range(4):
            n = 3 * (per_class - len(kept)) + 8
            first = [rng.choice(index) for _ in range(n)]
            second = [rng.choice(index) for _ in range(n)]
            t = torch.rand(n, 1, generator=generator).to(mu.device)
            eps = torch.randn(n, mu.size(1), generator=generator).to(mu.device)
            z = (1 - t) * mu[first] + t * mu[second] + (0.5 + 0.25 * round_index) * std[first] * eps
            candidates = []
            for raw in latents_decode(model, z, decoding="greedy"):
                candidate = model_output(model, raw)
                key = text_key(candidate)
                if key and key not in seen and not looping(candidate) and not has_slots(candidate):
                    seen.add(key)
                    candidates.append(candidate)
                    as_decoded[candidate] = raw
            if candidates and len(classes) > 1:
                cand_mu, _ = texts_encode(model, [as_decoded[c] for c in candidates])
                nearest = torch.cdist(cand_mu, centroids).argmin(dim=1).tolist()
                candidates = [c for c, j in zip(candidates, nearest, strict=True) if classes[j] == label]
            kept += candidates
            if len(kept) >= per_class:
                break
        realism = realism_scores(model, [as_decoded[c] for c in kept])
        order = sorted(range(len(kept)), key=lambda i: -(realism[i] if realism[i] is not None else 0.0))
        out += [(kept[i], label) for i in order[:per_class]]
    return out


def _candidates(items: list[dict], *, score_key: str) -> list[CandidateResult]:
    out = []
    for item in items:
        metadata = {k: v for k, v in item.items() if k != "text"}
        score = item.get(score_key)
        out.append(CandidateResult(text=item["text"], finish_reason="stop", score=score, metadata=metadata))
    return out


def variants_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    model = genmodel_get(name=params.get("model") or None, domain=params.get("domain") or "product")
    ctx.progress(0.1, f"variants from {model.label}")
    items, removed = variants_make(
        text=params["text"],
        k=params["k"],
        must_keep=params.get("must_keep") or [],
        spread=params.get("spread", 1.0),
        decoding=params.get("decoding", "greedy"),
        temperature=params.get("temperature", 0.8),
        seed=params.get("seed"),
        attributes=params.get("attributes") or None,
        max_perplexity=settings.GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY,
        model=model,
    )
    if not items:
        raise PermanentJobError(
            f"No variant passed among {removed['decoded']} decoded: {removed['missing_must_keep']} dropped a must-keep "
            f"word ({', '.join(params.get('must_keep') or []) or 'none given'}), {removed['broken']} had a broken or "
            f"invented word, {removed['copy_check']} failed the copy "
            f"checker, {removed['ungrounded']} stated what the text does not, {removed['not_fluent']} were not fluent (perplexity above GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY = "
            f"{settings.GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY:g}), {removed['drifted']} drifted from the text's meaning, "
            f"{removed['too_close']} repeated its words; try fewer must-keep words or another spread.",
            code="no_variants",
        )
    return JobResult(candidates=_candidates(items, score_key="score"), model_version=model.label,
                     usage={"decoded": removed["decoded"], "removed": removed})


def interpolate_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    model = genmodel_get(name=params.get("model") or None, domain=params.get("domain") or "product")
    items = interpolation_make(
        text_a=params["text_a"], text_b=params["text_b"], steps=params["steps"], path=params.get("path", "linear"), model=model
    )
    return JobResult(candidates=_candidates(items, score_key="realism"), model_version=model.label)


def sample_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    model = genmodel_get(name=params.get("model") or None, domain=params.get("domain") or "product")
    removed: dict[str, int] = {}
    items = samples_make(
        n=params["n"],
        source=params.get("source", "gan"),
        decoding=params.get("decoding", "greedy"),
        temperature=params.get("temperature", 1.0),
        seed=params.get("seed"),
        model=model,
        removed=removed,
    )
    return JobResult(candidates=_candidates(items, score_key="realism"), model_version=model.label,
                     usage={"decoded": removed["decoded"], "removed": {"broken": removed["broken"]}})


def augment_rows(params: dict) -> tuple[list[str], list[str]]:
    """(texts, labels) of an augment job: inline rows or a CSV (path or uploaded content)."""
    if params.get("rows"):
        return [r["text"] for r in params["rows"]], [str(r["label"]) for r in params["rows"]]
    text_col, label_col = params.get("text_col", "text"), params.get("label_col", "label")
    rows, header = csv_rows(path=params.get("csv", ""), content=params.get("csv_content", ""),
                            max_rows=settings.GENAI_GENMODEL_AUGMENT_MAX_ROWS)
    _columns_check(header, [text_col, label_col], source=Path(params["csv"]).name if params.get("csv") else "upload")
    pairs = [(r[text_col] or "", (r[label_col] or "").strip()) for r in rows]
    pairs = [(t, lab) for t, lab in pairs if t.strip() and lab]
    if not pairs:
        raise PermanentJobError("The CSV has no row with both a text and a label.", code="invalid_input")
    return [t for t, _ in pairs], [lab for _, lab in pairs]


def augment_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    texts, labels = augment_rows(params)
    if len(set(labels)) > settings.GENAI_GENMODEL_AUGMENT_MAX_CLASSES:
        raise PermanentJobError(
            f"{len(set(labels))} classes; at most {settings.GENAI_GENMODEL_AUGMENT_MAX_CLASSES} "
            "(GENAI_GENMODEL_AUGMENT_MAX_CLASSES).", code="invalid_input")
    texts = [pii_mask(t).text for t in texts]
    domain = params.get("domain") or "product"
    model = genmodel_get(name=None, domain=domain)
    ctx.progress(0.1, f"augmenting {len(set(labels))} classes with {model.label}")
    examples = augment_examples(texts=texts, labels=labels, per_class=params["per_class"], seed=params.get("seed", 0),
                                domain=domain)
    counts: dict[str, int] = {}
    for _, label in examples:
        counts[label] = counts.get(label, 0) + 1
    return JobResult(
        candidates=[CandidateResult(text=t, finish_reason="stop", metadata={"label": lab}) for t, lab in examples],
        model_version=model.label,
        usage={"per_class": counts, "input_rows": len(texts)},
    )
