"""Runner of the ``recommendation`` kind.

1. **Interests**: each interaction (title, tags, description, the shopper's own text) is embedded
   with MiniLM (``workers.runtime.embeddings``); the shopper's interest vector is their weighted
   mean: the kind of interaction sets the weight (a share or purchase says more than a view,
   ``TYPE_WEIGHTS``) and older interactions fade (``RECENCY_DECAY`` per step back).
2. **Ranking**: each product's attributes are embedded as one text; its score is the cosine to the
   interest vector. The interaction it is closest to is the "because" of its blurb.
3. **Blurbs** for the ``top_k`` best: the model writes one or two sentences on why the product
   fits, from the product's attribute list and a summary of the shopper's interests, the turn
   started with the product's brand and name. The text is cleaned like copy
   (``workers.runners.copy.description_clean``: loops cut, sentences with a colour, material,
   brand, size, category or number the product's attributes do not give removed); an empty result
   is replaced by a plain blurb from the attributes. The candidate's text is a "Because you
   viewed ..." line (true by construction) and the blurb; ``metadata.checks`` is the checker's
   verdict on the blurb (coverage is not asked of a blurb: ``passed`` means no unsupported claim
   and no repetition).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from generation.runner import CandidateResult, JobResult, RunnerContext, SilentContext
from generation.text.copycheck import attribute_items, copy_check
from workers.runners.copy import (
    TONE_WORDS,
    attributes_prompt,
    copy_prefix,
    copy_title,
    description_clean,
    stored_brands,
)

TYPE_WEIGHTS = {"purchased": 1.0, "shared": 1.0, "reviewed": 0.9, "liked": 0.9, "clicked": 0.7, "viewed": 0.5}
RECENCY_DECAY = 0.85
BLURB_MAX_TOKENS = 72
MIN_BLURB_WORDS = 6

SYSTEM = (
    "You write short product recommendations for an online shop in a {tone} tone. In one or two sentences, tell "
    "the shopper why the product fits their interests. Use only the product facts listed: never add a colour, "
    "material, brand, size, number or feature that is not in the list."
)


def interaction_text(interaction: Mapping) -> str:
    parts = [interaction["title"]]
    if interaction.get("tags"):
        parts.append(", ".join(interaction["tags"]))
    for key in ("description", "text"):
        if interaction.get(key):
            parts.append(interaction[key])
    return ". ".join(p.strip() for p in parts if p and p.strip())


def product_text(attributes: Mapping[str, object]) -> str:
    return ". ".join(", ".join(attribute_items(k, v)) for k, v in attributes.items() if str(k).lower() != "price")


def interest_weights(interactions: Sequence[Mapping]) -> np.ndarray:
    n = len(interactions)
    return np.array(
        [TYPE_WEIGHTS.get(i.get("type", "viewed"), 0.5) * RECENCY_DECAY ** (n - 1 - k) for k, i in enumerate(interactions)],
        dtype=np.float32,
    )


def products_rank(interactions: Sequence[Mapping], products: Sequence[Mapping]) -> list[dict]:
    """Products, best first: ``{"index", "id", "score", "because"}`` (``because``: the index of
    the interaction the product is closest to)."""
    from workers.runtime.embeddings import embedder_get

    embedder = embedder_get()
    vectors = embedder.encode([interaction_text(i) for i in interactions] + [product_text(p["attributes"]) for p in products])
    seen, items = vectors[: len(interactions)], vectors[len(interactions) :]
    interest = (interest_weights(interactions)[:, None] * seen).sum(axis=0)
    interest /= max(float(np.linalg.norm(interest)), 1e-9)
    scores = items @ interest
    nearest = (items @ seen.T).argmax(axis=1)
    order = sorted(range(len(products)), key=lambda i: (-float(scores[i]), i))
    return [
        {"index": i, "id": products[i]["id"], "score": round(float(scores[i]), 4), "because": int(nearest[i])}
        for i in order
    ]


def interests_summary(interactions: Sequence[Mapping], limit: int = 5) -> str:
    lines = []
    for interaction in list(interactions)[::-1][:limit]:  # the latest first
        tags = f" ({', '.join(interaction['tags'][:5])})" if interaction.get("tags") else ""
        lines.append(f"- {interaction.get('type', 'viewed')} \"{interaction['title']}\"{tags}")
    return "\n".join(lines)


def blurb_messages(*, attributes: Mapping[str, object], interactions: Sequence[Mapping], tone: str) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM.format(tone=TONE_WORDS.get(tone, TONE_WORDS["neutral"]))},
        {
            "role": "user",
            "content": f"The shopper recently:\n{interests_summary(interactions)}\n\nProduct facts:\n"
            f"{attributes_prompt(attributes)}\n\nIn one or two sentences, say why this product fits the shopper.",
        },
    ]


def blurb_fallback(attributes: Mapping[str, object]) -> str:
    title = copy_title(attributes)
    features = [f for k, v in attributes.items() if str(k).lower() in ("features", "feature") for f in attribute_items(k, v)]
    if features:
        return f"{title}: {features[0][:1].lower() + features[0][1:]}."
    return f"{title}."


def _lead(interaction: Mapping) -> str:
    return f"Because you {interaction.get('type', 'viewed')} \u201c{interaction['title']}\u201d:"


def recommendation_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    from workers.ml.decoding import SamplingParams
    from workers.runtime.adapters import lm_for
    from workers.runtime.completions import completions_run

    started = time.monotonic()
    interactions, products = params["interactions"], params["products"]
    ranking = products_rank(interactions, products)
    ctx.progress(0.2, f"{len(products)} products ranked")
    chosen = ranking[: params.get("top_k", 3)]
    lm = lm_for(params.get("model"), purpose="copy")
    brands = list(dict.fromkeys([*(str(p["attributes"].get("brand", "")) for p in products), *stored_brands()]))
    silent = SilentContext(ctx)

    def blurb(entry: dict):
        attributes = products[entry["index"]]["attributes"]
        messages = blurb_messages(attributes=attributes, interactions=interactions, tone=params.get("tone", "neutral"))
        prefix = copy_prefix(attributes)
        rendered = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = lm.tokenizer(rendered + prefix, add_special_tokens=False)["input_ids"]
        sampling = SamplingParams(max_new_tokens=BLURB_MAX_TOKENS, temperature=0.0, repetition_penalty=1.1,
                                  seed=params.get("seed"))
        (completion,) = completions_run(lm, ids, sampling, silent)
        raw = prefix + completion.text if completion.text.startswith((" ", ",", "'")) or not prefix else f"{prefix} {completion.text}"
        cleaned = description_clean(raw, attributes=attributes, finish_reason=completion.finish_reason, known_brands=brands)
        return cleaned, completion, len(ids)

    with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
        blurbs = list(pool.map(blurb, chosen))
    candidates = []
    for rank, (entry, (cleaned, completion, prompt_tokens)) in enumerate(zip(chosen, blurbs), start=1):
        attributes = products[entry["index"]]["attributes"]
        fallback = cleaned.words < MIN_BLURB_WORDS
        text_blurb = blurb_fallback(attributes) if fallback else cleaned.text
        because = interactions[entry["because"]]
        check = copy_check(text_blurb, attributes, known_brands=brands, min_coverage=0.0)
        candidates.append(
            CandidateResult(
                text=f"{_lead(because)} {text_blurb}",
                finish_reason=completion.finish_reason if completion.finish_reason in ("stop", "length") else "stop",
                score=entry["score"],
                prompt_tokens=prompt_tokens,
                completion_tokens=completion.completion_tokens,
                metadata={
                    "product_id": entry["id"],
                    "rank": rank,
                    "similarity": entry["score"],
                    "title": copy_title(attributes),
                    "blurb": text_blurb,
                    "because": {"index": entry["because"], "type": because.get("type", "viewed"), "title": because["title"]},
                    "checks": check.as_dict() | {"removed_claims": cleaned.removed},
                    "fallback": fallback,
                    "generated": cleaned.raw[:2000],
                },
            )
        )
    ctx.text_emit({i: c.text for i, c in enumerate(candidates)})
    return JobResult(
        candidates=candidates,
        model_version=lm.version,
        usage={
            "ranking": [{"id": r["id"], "score": r["score"]} for r in ranking],
            "prompt_tokens": sum(b[2] for b in blurbs),
            "completion_tokens": sum(b[1].completion_tokens for b in blurbs),
            "seconds": round(time.monotonic() - started, 4),
            "device": lm.device,
        },
    )
