"""Runners of the ``copy`` and ``brand_example_embed`` kinds: product copy that is true to the product.

One copy job, per audience segment (or once without segments):

1. **Few-shot examples**: the brand's stored examples (of the collection when given), ranked by
   MiniLM cosine to the product's attribute list; the best ``examples`` become earlier chat turns
   (``copy_messages``). An example without a stored vector is embedded
   here (and stored), so a fresh example is used before its embedding job runs.
2. **Generation** of ``n`` descriptions on the process's engine (``workers.runtime.completions``), the
   assistant's turn started with "The <brand> <name>"; the first greedy, the others sampled.
3. **Post-processing** of each: the text is cut before a repetition loop
   (``generation.text.repetition.loop_cut``), an unfinished last sentence dropped, and every sentence
   holding an unsupported claim (a colour, material, brand, size, category noun or number the
   attributes do not give) or repeating a 4-gram is removed (``generation.text.copycheck.claims_filter``).
4. **Regeneration**: a description left with fewer than ``GENAI_COPY_MIN_WORDS`` words, or stating
   less than ``GENAI_COPY_REGENERATE_BELOW`` of the facts, is generated again (sampled, new seed)
   up to ``max_regenerations`` times; the best try is kept. When no try is usable (too short, or
   about something else) the description is a plain one built from the attributes
   (``metadata.fallback``).
5. **Completion**: facts the description still misses are stated in short sentences after it
   (``copy_completion``), so the description alone is complete; the bullet points state every
   attribute but name, brand and category (those are the title's).
6. **Checks** of the final candidate (title, description, bullets) with ``copy_check``: coverage,
   missing facts, unsupported claims, repetition, passed; plus the coverage of the generated part
   alone (``generated_coverage``) and the claims removed from it.

Prompt design, for a 135M model that covers about 60% of the attributes it is given and invents
the rest when prompted loosely:

- the attributes are an explicit list, one ``- Key: value`` line each, in a fixed order;
- the instruction repeats the rule that matters (every fact, nothing else) and the length;
- up to ``GENAI_COPY_PROMPT_EXAMPLES`` brand examples (the most similar to the product, of its
  brand and collection) are earlier turns of the chat: their attributes (when stored) or their
  brand as the user's turn, their text as the assistant's. Without stored examples a built-in
  example of the same shape shows what a complete, truthful description looks like;
- the assistant's turn starts with the product's brand and name, so the text is about *it*.

The prompt is also the format of the copy adapter's fine-tuning rows (``copy_training_examples``).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from generation.runner import (
    CandidateResult,
    JobResult,
    NullContext,
    RunnerContext,
    SilentContext,
)
from generation.text.articles import article_for, articles_fix
from generation.text.copycheck import (
    KNOWN_KEYS,
    Fact,
    attribute_facts,
    attribute_items,
    claims_filter,
    content_words,
    copy_check,
    facts_stated,
    ungrounded_cut,
)
from generation.text.copyplan import copy_plan, description_facts, facts_lines
from generation.text.placeholders import key_normalise
from generation.text.repetition import loop_cut, repeated_ngram_text, word_count
from generation.text.sentences import sentences_split, unfinished_cut

# --- the prompt (also the fine-tuning rows' format) ---------------------------------------------

LENGTH_WORDS = {"short": 35, "medium": 70, "long": 120}


LENGTH_TOKENS = {"short": 96, "medium": 170, "long": 280}


TONE_WORDS = {
    "neutral": "clear, friendly and informative",
    "playful": "playful, upbeat and fun",
    "premium": "elegant, refined and premium",
    "technical": "precise and technical, focused on specifications",
}


SYSTEM_PROMPT = (
    "You are a copywriter for an online shop. You write product descriptions in a {tone} tone. "
    "Use every fact in the list and nothing else: never add a colour, material, brand, size, "
    "number or feature that is not in the list."
)


# Shown when a brand has no stored examples: one product per family, complete and truthful.
BUILTIN_EXAMPLES: tuple[tuple[dict, str], ...] = (
    (
        {"name": "Ridge Daypack", "brand": "Example Co", "category": "Backpack", "colour": "Rust",
         "material": "Waxed canvas", "price": "95 EUR", "features": "padded laptop sleeve; two side pockets",
         "audience": "commuters"},
        "The Example Co Ridge Daypack is a backpack made for commuters. Its waxed canvas body comes in a warm "
        "rust colour, and inside you will find a padded laptop sleeve, with two side pockets for the small "
        "things. A sturdy everyday companion for 95 EUR.",
    ),
)


_KEY_LABELS = {"colour": "Colour", "color": "Colour", "sizes": "Sizes", "size": "Size"}


def _key_label(key: str) -> str:
    key = re.sub(r"[_\-]+", " ", str(key)).strip()
    return _KEY_LABELS.get(key.lower(), key[:1].upper() + key[1:])


def attributes_ordered(attributes: Mapping[str, object]) -> list[tuple[str, list[str]]]:
    """(key, items) in a fixed order: the known keys first, then the free keys as given."""
    lowered = {str(k).strip().lower(): k for k in attributes}
    order = [lowered[k] for k in KNOWN_KEYS if k in lowered]
    if "color" in lowered and "colour" not in lowered:
        order.insert(min(3, len(order)), lowered["color"])
    order += [k for k in attributes if k not in order]
    return [(k, attribute_items(k, attributes[k])) for k in order if attribute_items(k, attributes[k])]


def attributes_prompt(attributes: Mapping[str, object]) -> str:
    """``- Key: value`` lines, list items joined with commas."""
    return "\n".join(f"- {_key_label(k)}: {', '.join(items)}" for k, items in attributes_ordered(attributes))


def copy_user_turn(*, attributes: Mapping[str, object], length: str, segment: Mapping | None = None) -> str:
    words = LENGTH_WORDS.get(length, 70)
    text = f"Product facts:\n{attributes_prompt(attributes)}\n\n"
    if segment:
        who = segment.get("name", "")
        if segment.get("description"):
            who += f" ({segment['description']})"
        text += f"Write for this audience: {who}.\n"
    text += f"Write a product description of about {words} words that uses every fact above and nothing else."
    return text


def copy_messages(
    *,
    attributes: Mapping[str, object],
    tone: str,
    length: str,
    segment: Mapping | None = None,
    examples: Sequence[tuple[Mapping, str]] = (),
) -> list[dict]:
    """The chat for one product (and audience segment): system, few-shot turns, the request."""
    turns = [{"role": "system", "content": SYSTEM_PROMPT.format(tone=TONE_WORDS.get(tone, TONE_WORDS["neutral"]))}]
    for example_attributes, text in examples or BUILTIN_EXAMPLES:
        turns.append({"role": "user", "content": copy_user_turn(attributes=example_attributes, length=length)})
        turns.append({"role": "assistant", "content": text.strip()})
    turns.append({"role": "user", "content": copy_user_turn(attributes=attributes, length=length, segment=segment)})
    return turns


# The sentence-at-a-time prompt (adapters trained with ``prompt_format`` "sentences", rows of
# ``copy_corpus --format sentences``): the product, the last sentences written, and the facts the
# next sentence states (``generation.text.copyplan``).
PROMPT_FORMAT_SENTENCES = "sentences"
SENTENCE_SYSTEM_PROMPT = (
    "You are a copywriter for an online shop. You write a product description in a {tone} tone, one "
    "sentence at a time. Each sentence states the facts it is given and nothing else."
)
CONTEXT_SENTENCES = 2  # of what is written so far, in the prompt
VOICE_WORDS = 30  # of a brand example, in the prompt
SENTENCE_TOKENS = {"short": 56, "medium": 64, "long": 80}
# Stated in their own plain sentence, never drawn: the model said a warranty as "It is available
# for 2 years of use" and care as "It is available for a lifetime and requires care".
PLAIN_KEYS = frozenset({"care", "warranty"})


def product_line(attributes: Mapping[str, object]) -> str:
    """"Mira Tie-Neck Blouse (blouse) by Velmora Studio": what the sentences are about."""
    name, brand, category = (_value(attributes, k) for k in ("name", "brand", "category"))
    line = name or category or "the product"
    if category and name:
        line += f" ({category})"
    return f"{line} by {brand}" if brand else line


def voice_excerpt(text: str) -> str:
    """The first words of a brand example, whole sentences where they fit."""
    kept: list[str] = []
    for sentence in sentences_split(text):
        if kept and word_count(" ".join([*kept, sentence])) > VOICE_WORDS:
            break
        kept.append(sentence.strip())
    excerpt = " ".join(kept)
    return excerpt if word_count(excerpt) <= VOICE_WORDS else " ".join(excerpt.split()[:VOICE_WORDS]) + " ..."


def copy_sentence_messages(
    *,
    attributes: Mapping[str, object],
    tone: str,
    length: str,
    before: str,
    facts: Sequence[Fact],
    segment: Mapping | None = None,
    voice: str = "",
) -> list[dict]:
    """The chat for the next sentence of a description: system, then the product, what is written
    so far (its last ``CONTEXT_SENTENCES``) and the facts the sentence states."""
    recent = " ".join(sentences_split(before)[-CONTEXT_SENTENCES:]) if before.strip() else ""
    user = f"Product: {product_line(attributes)}\n"
    if segment:
        who = segment.get("name", "") + (f" ({segment['description']})" if segment.get("description") else "")
        user += f"Written for: {who}\n"
    if voice:
        user += f"Brand voice: {voice}\n"
    user += (f"Length: {length}\nSo far: {recent or '(this is the first sentence)'}\n"
             f"Next sentence states:\n{facts_lines(facts)}")
    system = SENTENCE_SYSTEM_PROMPT.format(tone=TONE_WORDS.get(tone, TONE_WORDS["neutral"]))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _value(attributes: Mapping[str, object], key: str) -> str:
    for k, v in attributes.items():
        if str(k).strip().lower() == key:
            return ", ".join(attribute_items(k, v))
    return ""


def copy_prefix(attributes: Mapping[str, object]) -> str:
    """The words the assistant's turn starts with: "The <brand> <name>"."""
    brand, name = _value(attributes, "brand"), _value(attributes, "name")
    if name and brand and brand.lower() not in name.lower():
        return f"The {brand} {name}"
    if name:
        return f"The {name}"
    return ""


def copy_title(attributes: Mapping[str, object]) -> str:
    """Brand, name, and the category when the name does not already say it."""
    brand, name, category = (_value(attributes, k) for k in ("brand", "name", "category"))
    title = name or category
    if brand and brand.lower() not in title.lower():
        title = f"{brand} {title}".strip()
    if category and name and not set(content_words(category)) <= set(content_words(name)):
        title = f"{title} – {category}"
    return title.strip()


def copy_bullets(attributes: Mapping[str, object]) -> list[str]:
    """One bullet per feature, then one per other attribute ("Material: linen"); the name,
    brand and category are the title's."""
    bullets = []
    for key, items in attributes_ordered(attributes):
        lowered = str(key).strip().lower()
        if lowered in ("name", "brand", "category"):
            continue
        if lowered in ("features", "feature"):
            bullets += [item[:1].upper() + item[1:] for item in items]
        elif lowered == "audience":
            bullets.append(f"Made for {', '.join(items)}")
        else:
            bullets.append(f"{_key_label(key)}: {', '.join(items)}")
    return bullets


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) == 1 else text


def facts_sentence(attributes: Mapping[str, object], *, keys: set[tuple[str, str]] | None = None, lead: str = "It") -> str:
    """The attributes (or only the ``(key, item)`` pairs in ``keys``) in one or two sentences of
    prose: "It is a black sling bag made of recycled nylon, with an adjustable strap, for
    commuters, at 45 EUR." Never a list of "Key: value" lines."""

    def items(*names: str) -> list[str]:
        out = []
        for key, values in attributes_ordered(attributes):
            lowered = key_normalise(key)
            if lowered in names:
                out += [v for v in values if keys is None or (lowered, v) in keys]
        return out

    category, colours, materials = items("category"), items("colour", "color", "colours", "colors"), items("material")
    features, sizes = items("features", "feature"), items("sizes", "size")
    audience, prices = items("audience"), items("price")
    clauses = []
    noun = _lower_first(category[0]) if category else ""
    colour = _join([c.lower() for c in colours]) if colours else ""
    fits = items("fit")
    if noun or colour:
        clauses.append(f"is {article_for(colour or noun)} {' '.join(p for p in (colour, noun) if p) or 'piece'}"
                       if noun else f"comes in {colour}")
    if materials:
        clauses.append(f"made of {_join([_lower_first(m) for m in materials])}")
    if fits:  # "in a relaxed fit", not "Its fit is relaxed fit"
        fit = _join([_lower_first(f) for f in fits])
        clauses.append(f"in {article_for(fit)} {fit}" + ("" if re.search(r"\b(?:fit|cut)$", fit) else " fit"))
    if features:
        clauses.append(f"with {_join([_lower_first(f) for f in features])}")
    if sizes:
        clauses.append("in one size" if [z.lower() for z in sizes] == ["one size"] else
                       f"in {'size' if len(sizes) == 1 else 'sizes'} {_join(sizes)}")
    if audience:
        clauses.append(f"for {_join(audience)}")
    if prices:
        clauses.append(f"at {prices[0]}")
    sentences = []
    if clauses:
        head = clauses[0]
        for opening, verb in (("made of ", "is "), ("with ", "comes "), ("in ", "comes "), ("for ", "is made "),
                              ("at ", "")):
            if head.startswith(opening):
                head = verb + (f"costs {head[3:]}" if opening == "at " else head)
                break
        if lead == "It" and len(clauses) == 1 and colour and not noun:
            sentences.append(f"Its colour is {colour}.")  # not one more "It comes in ..." after the model's
        else:
            sentences.append(f"{lead} {head}" + "".join(f", {c}" for c in clauses[1:]) + ".")
    known = {"name", "brand", "category", "colour", "color", "colours", "colors", "material", "features", "feature",
             "sizes", "size", "audience", "price", "fit"}
    others = [(str(k).strip(), v) for k, values in attributes_ordered(attributes)
              if key_normalise(k) not in known
              for v in values if keys is None or (key_normalise(k), v) in keys]
    grouped: dict[str, list[str]] = {}
    for k, v in others:
        grouped.setdefault(k, []).append(_lower_first(v))
    described = []
    for k, values in grouped.items():
        template = KEY_SENTENCES.get(key_normalise(k))
        if template:
            sentences.append(template.format(_join(values)))
            continue
        label = k.lower().replace("_", " ")
        plural = len(values) > 1 or (label.endswith("s") and not label.endswith(("ss", "us", "is")))
        described.append(f"its {label} {'are' if plural else 'is'} {_join(values)}")
    if described:
        sentences.append(_join(described)[:1].upper() + _join(described)[1:] + ".")
    return articles_fix(" ".join(sentences), [v for _, values in attributes_ordered(attributes) for v in values])


# Attributes a sentence of their own says better than "its <key> is <value>".
KEY_SENTENCES = {
    "care": "To care for it, {}.",
    "warranty": "The warranty is {}.",
    "capacity": "It holds {}.",
    "weight": "It weighs {}.",
    "dimensions": "It measures {}.",
    "set contents": "The set contains {}.",
    "age range": "It is made for ages {}.",
}


def copy_fallback_description(attributes: Mapping[str, object]) -> str:
    """A plain description stating the attributes, for when every generated one failed."""
    brand, name = _value(attributes, "brand"), _value(attributes, "name")
    rest = {("name", v) for v in [name]} | {("brand", v) for v in [brand]}
    facts = {(key_normalise(k), v) for k, values in attributes_ordered(attributes) for v in values}
    lead = copy_prefix(attributes) or (f"The {brand}" if brand else "It")  # "The Lumen E-Reader", not "Lumen Lumen"
    return facts_sentence(attributes, keys=facts - rest, lead=lead)


def copy_text(*, title: str, description: str, bullets: Sequence[str]) -> str:
    """The readable candidate: title, description, bullet points."""
    lines = [title, "", description]
    if bullets:
        lines += [""] + [f"• {b}" for b in bullets]
    return "\n".join(lines).strip()


def copy_training_examples(*, brand: str | None = None) -> list[dict]:
    """Chat-format fine-tuning rows from the active brand examples (of ``brand``, or all):
    ``{"messages": [system, user (the attributes prompt), assistant (the example text)]}``,
    the same prompt the ``copy`` runner gives the model (neutral tone, medium length)."""
    from generation.models import BrandExample

    rows = BrandExample.objects.filter(active=True).order_by("pk")
    if brand:
        rows = rows.filter(brand__iexact=brand.strip())
    out = []
    for example in rows:
        attributes = dict(example.attributes or {})
        attributes.setdefault("brand", example.brand)
        if example.collection:
            attributes.setdefault("collection", example.collection)
        messages = copy_messages(attributes=attributes, tone="neutral", length="medium", examples=[])
        # No few-shot turns in training rows: the fine-tuned model learns the voice itself.
        out.append({"messages": [messages[0], messages[-1], {"role": "assistant", "content": example.text}]})
    return out


# --- generation ------------------------------------------------------------------------------

REGENERATION_TEMPERATURE = 0.8
SAMPLED_TEMPERATURE = 0.7
REPETITION_PENALTY = 1.1


# --- post-processing (no model) ----------------------------------------------------------------


@dataclass
class Description:
    """One generated description after post-processing."""

    raw: str
    text: str
    removed: list[dict]
    loop_cut: bool
    generated_coverage: float
    words: int
    finish_reason: str
    completion_tokens: int = 0
    attempt: int = 0
    parts: list[dict] = field(default_factory=list)  # sentence at a time: each sentence, its facts, who wrote it
    mean_logprob: float | None = None  # a drawn sentence's mean token log-probability under the model
    tone_score: float | None = None  # a drawn sentence's probability of reading in the asked tone

    def usable(self) -> bool:
        return self.words >= settings.GENAI_COPY_MIN_WORDS and self.generated_coverage >= settings.GENAI_COPY_REGENERATE_BELOW

    def rank(self) -> tuple:
        """Better first: usable, then the facts stated less a tenth per sentence or clause removed
        (a sample that needed less cutting holds less nonsense in what is left), then length."""
        return (self.usable(), round(self.generated_coverage - 0.1 * len(self.removed), 4), self.words)


def description_clean(
    raw: str,
    *,
    attributes: Mapping[str, object],
    finish_reason: str,
    extra_texts: Sequence[str] = (),
    known_brands: Sequence[str] = (),
) -> Description:
    """Loops cut, unfinished last sentence dropped, unsupported sentences removed."""
    text = articles_fix(" ".join(raw.split()), [f.value for f in attribute_facts(attributes)])
    text, was_cut = loop_cut(text)
    if finish_reason == "length" or was_cut:
        text = unfinished_cut(text)
    # Cut first: a sentence shortened by the cut is checked as it is shown ("It carries a dry clean
    # only note, so ... care" keeps its cue word only until its tail goes).
    text, ungrounded = ungrounded_cut(text, attributes)
    text, removed, _ = claims_filter(text, attributes, extra_texts=extra_texts, known_brands=known_brands)
    coverage = copy_check(text, attributes, extra_texts=extra_texts, known_brands=known_brands).coverage if text else 0.0
    return Description(
        raw=raw, text=text,
        removed=[{"type": c.type, "claim": c.claim, "sentence": c.sentence[:300]} for c in removed] + ungrounded,
        loop_cut=was_cut, generated_coverage=coverage, words=word_count(text), finish_reason=finish_reason,
    )


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def copy_completion(attributes: Mapping[str, object], description: str, *, length: str = "medium") -> str:
    """A sentence of prose stating the facts ``description`` misses of those a text of ``length``
    states (``copyplan.description_facts``; empty when it misses none)."""
    check = copy_check(description, attributes)
    if not check.missing:
        return ""
    wanted = {(f.key, f.value) for f in description_facts(attributes, length)}
    missing = {(f.key, f.value) for f in attribute_facts(attributes) if f.label() in set(check.missing)} & wanted
    if not missing:
        return ""
    name_missing = [(k, v) for k, v in missing if k in ("name", "brand")]
    lead = "It"
    if name_missing:
        subject = copy_prefix(attributes) or copy_title(attributes)
        lead = subject or "It"
    named = lead[:1].lower() + lead[1:] if lead.startswith("The ") else lead
    return facts_sentence(attributes, keys=missing - set(name_missing), lead=lead) or (f"This is {named}." if name_missing else "")


# --- brand examples ------------------------------------------------------------------------------


def brand_examples_select(
    *, attributes: Mapping[str, object], collection: str = "", k: int = 2
) -> list[tuple[dict, str]]:
    """The ``k`` stored examples of the product's brand most similar to its attribute list
    (MiniLM cosine), as (attributes, text); examples without a current vector are embedded and
    stored first."""
    from generation.services.copy import (
        brand_example_embeddings_store,
        brand_examples_for,
    )
    from workers.runtime.embeddings import embedder_get

    brand = str(attributes.get("brand") or next((v for kk, v in attributes.items() if kk.lower() == "brand"), "") or "")
    if not brand or k <= 0:
        return []
    rows = brand_examples_for(brand=brand, collection=collection)
    if not rows:
        return []
    embedder = embedder_get()
    stale = [r for r in rows if not r.embedding or r.embedded_hash != r.content_hash or r.embedding_model != embedder.name]
    if stale:
        vectors = embedder.encode([r.embedding_text() for r in stale])
        brand_example_embeddings_store(
            model_name=embedder.name, vectors=[(r.pk, r.content_hash, v.tobytes()) for r, v in zip(stale, vectors)]
        )
        for r, v in zip(stale, vectors):
            r.embedding = v.tobytes()
    matrix = np.stack([np.frombuffer(bytes(r.embedding), dtype=np.float32) for r in rows])
    query = embedder.encode([attributes_prompt(attributes)])[0]
    order = np.argsort(-(matrix @ query))[:k]
    chosen = [rows[i] for i in order]
    # Best last: the example nearest the request is the turn just before it.
    return [(dict(r.attributes or {}) or {"brand": r.brand}, r.text) for r in reversed(chosen)]


def stored_brands() -> list[str]:
    from generation.models import BrandExample

    return list(BrandExample.objects.filter(active=True).values_list("brand", flat=True).distinct()[:1000])


# --- generation ----------------------------------------------------------------------------------


@dataclass
class CopyRequest:
    """One (product, segment) to write: its prompt and, after generation, its descriptions."""

    params: dict
    segment: dict | None
    messages: list[dict]
    known_brands: list[str]
    descriptions: list[Description] = field(default_factory=list)
    prompt_tokens: int = 0
    attempts: list[int] = field(default_factory=list)
    lm: object | None = None  # resolved in copy_prepare, on the caller's thread (it reads the model versions)
    voice: str = ""  # the best brand example's first words (the sentence-at-a-time prompt)

    @property
    def extra_texts(self) -> list[str]:
        if not self.segment:
            return []
        return [self.segment.get("name", ""), self.segment.get("description", "")]



def _completions(lm, ids: list[int], *, n: int, temperature: float, seed: int | None, max_new_tokens: int, ctx) -> list:
    from workers.ml.decoding import SamplingParams
    from workers.runtime.completions import completions_run

    common = {"max_new_tokens": max_new_tokens, "top_p": 0.95, "top_k": 50, "repetition_penalty": REPETITION_PENALTY,
              "penalise_prompt": False}  # the attribute values are to be repeated as given
    if temperature > 0 or n == 1:
        return completions_run(lm, ids, SamplingParams(temperature=temperature, n=n, seed=seed, **common), ctx)
    first = completions_run(lm, ids, SamplingParams(temperature=0.0, n=1, seed=seed, **common), ctx)
    rest = completions_run(
        lm, ids, SamplingParams(temperature=SAMPLED_TEMPERATURE, n=n - 1, seed=seed, **common), ctx
    )
    return first + rest


def copy_generate(request: CopyRequest, ctx) -> None:
    """Generate, clean and (bounded) regenerate the request's ``n`` descriptions."""
    from workers.runtime.adapters import lm_for, lm_is_adapter

    params = request.params
    lm = request.lm or lm_for(params.get("model"), purpose="copy")
    if getattr(lm, "prompt_format", "") == PROMPT_FORMAT_SENTENCES:
        copy_generate_sentences(request, ctx, lm)
        return
    attributes = params["attributes"]
    # The base model is started on "The <brand> <name>" so that it writes about this product; a copy
    # adapter learned the task (and varied openings) from the corpus and starts on its own.
    prefix = "" if lm_is_adapter(lm) else copy_prefix(attributes)
    rendered = lm.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
    ids = lm.tokenizer(rendered + prefix, add_special_tokens=False)["input_ids"]
    if len(ids) > settings.GENAI_MAX_PROMPT_TOKENS and len(request.messages) > 2:
        # Too long with the examples: without them.
        request.messages = [request.messages[0], request.messages[-1]]
        rendered = lm.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        ids = lm.tokenizer(rendered + prefix, add_special_tokens=False)["input_ids"]
    request.prompt_tokens = len(ids)
    n, seed = params.get("n", 1), params.get("seed")
    max_new_tokens = LENGTH_TOKENS.get(params.get("length", "medium"), 170)
    silent = SilentContext(ctx)

    def clean(completions, attempt: int) -> list[Description]:
        out = []
        for c in completions:
            d = description_clean(
                (prefix + " " + c.text.lstrip()) if prefix and not c.text.startswith((" ", ",", "'")) else prefix + c.text,
                attributes=attributes, finish_reason=c.finish_reason,
                extra_texts=request.extra_texts, known_brands=request.known_brands,
            )
            d.completion_tokens, d.attempt = c.completion_tokens, attempt
            out.append(d)
        return out

    # ``samples`` drawn per candidate (the first of the first greedy unless a temperature is
    # asked for), the best of each group kept.
    samples = max(1, settings.GENAI_COPY_SAMPLES)
    drawn = clean(_completions(lm, ids, n=n * samples, temperature=params.get("temperature", 0.0), seed=seed,
                               max_new_tokens=max_new_tokens, ctx=silent), 0)
    best = [max(drawn[i * samples : (i + 1) * samples], key=Description.rank) for i in range(n)]
    request.attempts = [1] * n
    for attempt in range(1, params.get("max_regenerations", 0) + 1):
        failing = [i for i, d in enumerate(best) if not d.usable()]
        if not failing or ctx.stop_reason() is not None:
            break
        retry_seed = None if seed is None else seed + 1000 * attempt
        again = clean(_completions(lm, ids, n=len(failing), temperature=REGENERATION_TEMPERATURE, seed=retry_seed,
                                   max_new_tokens=max_new_tokens, ctx=silent), attempt)
        for i, d in zip(failing, again):
            request.attempts[i] += 1
            if d.rank() > best[i].rank():
                best[i] = d
    request.descriptions = best


def _group_fallback(attributes: Mapping[str, object], group: Sequence[Fact], *, first: bool, opener: str = "") -> str:
    """The group's facts in a plain sentence, for when no drawn sentence states them cleanly; an
    opening sentence keeps the tone's ``opener``: "Meet the Court Classic from Brightside, a pair
    of sneakers." """
    keys = {(f.key, f.value) for f in group}
    named = {k for k in keys if k[0] in ("name", "brand")}
    if opener and ("name", _value(attributes, "name")) in named:
        lead = "\x00"
        rest = facts_sentence(attributes, keys=keys - named, lead=lead)
        brand = _value(attributes, "brand")
        if rest.startswith(f"{lead} is ") and rest.count(".") == 1:
            from_brand = f" from {brand}" if brand and brand.lower() not in opener.lower() else ""
            return f"{opener}{from_brand}, {rest[len(lead) + 4:]}"
    if named or first:
        subject = copy_prefix(attributes) or copy_title(attributes)
        return facts_sentence(attributes, keys=keys - named, lead=subject or "It") or (f"This is {_lower_first(subject)}." if subject else "")
    return facts_sentence(attributes, keys=keys)


_NAMING_KEYS = ("name", "brand", "category")


def _phrase_count(phrase: str, text: str) -> int:
    pattern = r"(?<![\w'’-])" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"(?![\w-])"
    return len(re.findall(pattern, text, re.I))


# A sentence of a description says something: it has a verb of plain product prose (or opens in a
# tone: "Meet the ...", "Introducing the ..."); a list of facts without one is a fragment.
_VERB = re.compile(
    r"\b(?:is|are|was|were|has|have|had|comes?|costs?|holds?|measures?|includes?|offers?|fits?|weighs?|runs?|"
    r"lasts?|sits?|keeps?|gives?|brings?|pairs?|presents?|completes?|features|carries|adds?|sells?|charges?|"
    r"meet|say|introducing|here|can|will|does|do|let|lets|makes?|takes?|goes|suits?|works?|stays?|stands?|"
    r"opens?|closes?|folds?|rests?|uses?|needs?|arrives?|ships?|wears?|covers?|protects?)\b", re.I)
_DANGLING = re.compile(r"\b(?:at|for|with|of|in|to|from|by|and|or|a|an|the|is|are)\s*[.!?]?\s*$", re.I)


def sentence_faults(text: str, group: Sequence[Fact], facts: Sequence[Fact], *,
                    attributes: Mapping[str, object] | None = None, tone: str = "neutral") -> list[str]:
    """Why a drawn sentence cannot stand for its group of the plan, besides the checker's claims:
    a fact of another group said here (it is said again in its own sentence: "Fernhill's Linen
    Shirt ... made from linen ... It comes in sky blue, made of linen"), the name or the brand not
    as given in the sentence that introduces them, or the brand twice in one sentence."""
    faults = []
    naming = {w for f in facts if f.key in _NAMING_KEYS for w in content_words(f.value)}
    others = [f for f in facts if f not in group and f.key not in _NAMING_KEYS
              and not set(content_words(f.value)) <= naming]  # "Linen" in "Linen Shirt" is its name
    faults += [f"states {f.label()} (another sentence's)" for f in facts_stated(text, others)]
    for f in group:
        if f.key in ("name", "brand") and not _phrase_count(f.value, text):
            faults.append(f"{f.key} not as given: {f.value}")
    for f in facts:
        if f.key == "brand" and _phrase_count(f.value, text) > 1:
            faults.append(f"brand twice: {f.value}")
    if _DANGLING.search(text):  # "It comes in sizes 55 x 40 x 20 cm and is available at."
        faults.append("ends on a word that needs more")
    if not _VERB.search(text):  # "At 89 EUR."; "Six card slots, a central note pocket and an RFID blocking."
        faults.append("no verb")
    if attributes is not None and (extra := words_of_its_own(text, attributes, tone)):
        faults.append(f"words of its own: {', '.join(sorted(extra))}")
    return faults


def _sentence_pick(drawn: Sequence[Description], group: Sequence[Fact], before: str,
                   facts: Sequence[Fact] = (), *, attributes: Mapping[str, object] | None = None,
                   tone: str = "neutral") -> tuple[Description | None, float]:
    """The drawn sentence that states most of its facts with least cut, nothing said before and
    no ``sentence_faults``; among clean ones, the one that reads most in the asked tone when the
    draws were scored for it (``_tone_rank``)."""
    best, best_key, best_share = None, None, 0.0
    for d in drawn:
        if not d.text:
            continue
        share = len(facts_stated(d.text, group)) / len(group)
        faulty = (repeated_ngram_text(f"{before} {d.text}") is not None
                  or bool(sentence_faults(d.text, group, facts, attributes=attributes, tone=tone)))
        clean = not faulty and share >= 1.0 and not d.removed
        tonal = d.tone_score if clean and d.tone_score is not None else 0.0
        key = (not faulty, share >= 1.0 and not d.removed, tonal, round(share - 0.25 * len(d.removed), 4), -d.words)
        if best_key is None or key > best_key:
            best, best_key, best_share = d, key, share if not faulty else 0.0
    return best, best_share


# The words a drawn sentence may add to its facts: how it is said, never what the product is, has or
# does. The sentence model joined facts with words of its own that the claim checker has no list
# for ("the hanging loop gives it a hangover", "a stovetop-safe for non-drinkers", "a shirt with a
# quiet charm", "a suitcase for the big guys", "made for everyday life"), and sampled sentences that
# read "premium" to the tone scorer did so with more ("in shades of serenity and grace", "a sense of
# drama to the proceedings"). A draw with such a word is faulted (``sentence_faults``): another draw
# or the plain sentence stands for its facts.
PLAIN_WORDS = frozenset(
    "made come comes came price priced cost costs available has have hold holds pair size sizes fit colour "
    "color material feature features include includes included offer offers finish finished each they them "
    "shade measure measures carry carries all there while part wear worn use care piece also both plus well "
    "fitted range set option choice".split())
TONE_PHRASING_WORDS = {
    "playful": frozenset("meet say hello grab ready yours go treat fun hey here new need sorted done".split()),
    "premium": frozenset("present presents rendered composed offered introduce introducing detail detailed "
                         "accented considered".split()),
    "technical": frozenset("capacity composition specification specified rated dimension weight retail reference "
                           "sizing listed key main".split()),
}


def words_of_its_own(text: str, attributes: Mapping[str, object], tone: str = "neutral") -> set[str]:
    """The content words of ``text`` that are neither the product's (its keys and values) nor
    ``PLAIN_WORDS`` nor the tone's ``TONE_PHRASING_WORDS``."""
    own = {w for key, items in attributes_ordered(attributes) for item in [key, *items] for w in content_words(item)}
    allowed = own | PLAIN_WORDS | TONE_PHRASING_WORDS.get(tone, frozenset())
    return {w for w in content_words(text) if w not in allowed and not w.isdigit()}


# How a playful or premium text starts (the model writes the rest of the opening sentence): the
# tone a reader notices first. The corpus opens so ("Meet the Retro Ringer Tee from Fizzwick",
# "Grisaille presents the Atelier Oversized Tee"); a product's candidates take turns.
TONE_OPENERS = {
    "playful": ("Meet {the_name}", "Say hello to {the_name}", "Here comes {the_name}"),
    "premium": ("{brand} presents {the_name}", "Introducing {the_name}"),
}


def tone_opener(attributes: Mapping[str, object], tone: str, index: int = 0) -> str:
    """The first words of the description in ``tone`` ("Meet the Metro Sling"; empty for neutral
    and technical, without a name, or with ``GENAI_COPY_TONE_OPENERS`` off), the same for a
    product and candidate index."""
    name, brand = _value(attributes, "name"), _value(attributes, "brand")
    options = [o for o in TONE_OPENERS.get(tone, ()) if name and (brand or "{brand}" not in o)]
    if not options or not settings.GENAI_COPY_TONE_OPENERS:
        return ""
    the_name = name if name.lower().startswith("the ") else f"the {name}"
    turn = int(hashlib.sha256(f"{name}|{brand}".encode()).hexdigest(), 16) + index
    return options[turn % len(options)].format(the_name=the_name, brand=brand)


def _tone_rank(drawn: Sequence[Description], tone: str) -> None:
    """Score the draws for ``tone`` (``workers.runners.copy_tone``), the first draw (greedy) keeping
    its place unless another reads in the tone by ``GENAI_COPY_TONE_MARGIN`` more; a draw the model
    found much less likely than the first (``GENAI_COPY_TONE_MAX_LOGPROB_DROP`` nats a token) is
    not preferred for its tone."""
    from workers.runners.copy_tone import tone_scorer_get

    texts = [d.text for d in drawn if d.text]
    if len(texts) < 2:
        return
    scores = iter(tone_scorer_get().score(texts, tone))
    first = drawn[0].mean_logprob
    for index, d in enumerate(drawn):
        if not d.text:
            continue
        score = next(scores)
        if index == 0:
            d.tone_score = score + settings.GENAI_COPY_TONE_MARGIN
            continue
        too_unlikely = (first is not None and d.mean_logprob is not None
                        and d.mean_logprob < first - settings.GENAI_COPY_TONE_MAX_LOGPROB_DROP)
        d.tone_score = 0.0 if too_unlikely else score


def _perfect(d: Description | None, share: float) -> bool:
    return d is not None and share >= 1.0 and not d.removed


def copy_generate_sentences(request: CopyRequest, ctx, lm) -> None:
    """The ``n`` descriptions written one sentence at a time along the product's sentence plan
    (``copyplan.copy_plan``): each sentence drawn greedily first (sampled for the other
    candidates), drawn ``GENAI_COPY_SAMPLES`` times more when the first draw does not state its
    facts cleanly, each draw cleaned as a whole description is (cut, claim filter), the best kept;
    a group no draw states whole (every fact, nothing cut; a size list split over two sentences
    read "Sizes S, M and L ... It comes in size XL") gets a plain sentence, as do care and
    warranty (``PLAIN_KEYS``) always."""
    params = request.params
    attributes = params["attributes"]
    tone, length = params.get("tone", "neutral"), params.get("length", "medium")
    plan = copy_plan(attributes, length)
    all_facts = [f for group in plan for f in group]
    n, seed = params.get("n", 1), params.get("seed")
    temperature = params.get("temperature", 0.0)
    samples = max(1, settings.GENAI_COPY_SAMPLES)
    tonal = tone != "neutral" and settings.GENAI_COPY_TONE_RANK  # draw every sentence more than once, keep the most tonal
    max_new_tokens = SENTENCE_TOKENS.get(length, 64)
    silent = SilentContext(ctx)

    def draw(ids: list[int], *, n_draws: int, temp: float, draw_seed: int | None, prefix: str = "") -> list[Description]:
        from workers.ml.decoding import SamplingParams
        from workers.runtime.completions import completions_run

        sampling = SamplingParams(temperature=temp, n=n_draws, seed=draw_seed, max_new_tokens=max_new_tokens, top_p=0.95,
                                  top_k=50, repetition_penalty=REPETITION_PENALTY, penalise_prompt=False)
        out = []
        for c in completions_run(lm, ids, sampling, silent):
            text = (prefix + c.text).strip() if c.text.startswith((" ", ",", "'", ":")) else f"{prefix} {c.text.strip()}".strip()
            d = description_clean(text, attributes=attributes, finish_reason=c.finish_reason,
                                  extra_texts=request.extra_texts, known_brands=request.known_brands)
            d.completion_tokens = c.completion_tokens
            d.mean_logprob = c.mean_logprob
            out.append(d)
        return out

    descriptions, stopped = [], False
    for i in range(n):
        kept: list[str] = []
        parts: list[dict] = []
        removed: list[dict] = []
        raws: list[str] = []
        tokens = 0
        for g, group in enumerate(plan):
            if ctx.stop_reason() is not None:
                stopped = True
                break
            before = " ".join(kept)
            facts = [f.label() for f in group]
            if all(f.key in PLAIN_KEYS for f in group):  # "To care for it, hand wash. The warranty is 2 years."
                text = _group_fallback(attributes, group, first=not kept)
                kept.append(text)
                parts.append({"facts": facts, "text": text, "by": "plain", "draws": 0})
                continue
            messages = copy_sentence_messages(attributes=attributes, tone=tone, length=length, before=before,
                                              facts=group, segment=request.segment, voice=request.voice)
            rendered = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            opener = tone_opener(attributes, tone, i) if not kept and any(f.key == "name" for f in group) else ""
            ids = lm.tokenizer(rendered + opener, add_special_tokens=False)["input_ids"]
            request.prompt_tokens += len(ids)
            base_seed = None if seed is None else seed + 7919 * i + 31 * g
            first_temp = temperature if i == 0 else max(temperature, SAMPLED_TEMPERATURE)
            drawn = draw(ids, n_draws=1, temp=first_temp, draw_seed=base_seed, prefix=opener)
            best, share = _sentence_pick(drawn, group, before, all_facts, attributes=attributes, tone=tone)
            if (tonal or not _perfect(best, share)) and samples > 1:
                drawn += draw(ids, n_draws=samples - 1, temp=max(temperature, SAMPLED_TEMPERATURE),
                              draw_seed=None if base_seed is None else base_seed + 1, prefix=opener)
                if tonal:
                    _tone_rank(drawn, tone)
                best, share = _sentence_pick(drawn, group, before, all_facts, attributes=attributes, tone=tone)
            tokens += sum(d.completion_tokens for d in drawn)
            raws.append(" | ".join(d.raw for d in drawn))
            if _perfect(best, share):
                kept.append(best.text)
                parts.append({"facts": facts, "text": best.text, "by": "model", "draws": len(drawn)})
            else:
                text = _group_fallback(attributes, group, first=not kept, opener=opener)
                kept.append(text)
                parts.append({"facts": facts, "text": text, "by": "plain", "draws": len(drawn)})
                removed += (best.removed if best is not None else [])
        text = " ".join(t for t in kept if t)
        coverage = copy_check(text, attributes, extra_texts=request.extra_texts,
                              known_brands=request.known_brands).coverage if text else 0.0
        descriptions.append(Description(
            raw="\n".join(raws), text=text, removed=removed, loop_cut=False, generated_coverage=coverage,
            words=word_count(text), finish_reason="cancelled" if stopped else "stop", completion_tokens=tokens,
            parts=parts,
        ))
        if stopped:
            break
    while len(descriptions) < n:  # cancelled before these were started
        descriptions.append(Description(raw="", text="", removed=[], loop_cut=False, generated_coverage=0.0, words=0,
                                        finish_reason="cancelled"))
    request.descriptions = descriptions
    request.attempts = [1] * n


def copy_candidate(request: CopyRequest, description: Description, attempts: int, stop_reason: str | None) -> CandidateResult:
    """The final candidate: title, description (generated, completed, or the fallback), bullets, checks."""
    attributes = request.params["attributes"]
    fallback = not description.usable()  # every try too short or off the product: say it plainly
    body = copy_fallback_description(attributes) if fallback else description.text
    completion = copy_completion(attributes, body, length=request.params.get("length", "medium"))
    full_description = f"{body} {completion}".strip()
    title, bullets = copy_title(attributes), copy_bullets(attributes)
    text = copy_text(title=title, description=full_description, bullets=bullets)
    check = copy_check(text, attributes, extra_texts=request.extra_texts, known_brands=request.known_brands,
                       repetition_text=full_description)
    description_check = copy_check(full_description, attributes, extra_texts=request.extra_texts,
                                   known_brands=request.known_brands)
    checks = check.as_dict() | {
        "description_coverage": description_check.coverage,
        "generated_coverage": 0.0 if fallback else description.generated_coverage,
        "removed_claims": description.removed,
        "loop_cut": description.loop_cut,
    }
    finish = description.finish_reason
    if finish == "cancelled" and stop_reason:
        finish = stop_reason
    metadata = {
        "title": title,
        "description": full_description,
        "bullets": bullets,
        "segment": request.segment["name"] if request.segment else None,
        "checks": checks,
        "attempts": attempts,
        "fallback": fallback,
        "completed_sentences": completion,
        "generated": description.raw[:4000],
    }
    if description.parts:
        metadata["sentences"] = description.parts
    return CandidateResult(
        text=text,
        finish_reason=finish if finish in ("stop", "length", "cancelled", "timeout") else "stop",
        score=check.coverage,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=description.completion_tokens,
        metadata=metadata,
    )


def copy_prepare(params: dict, *, known_brands: Sequence[str] = (), lm=None) -> list[CopyRequest]:
    """One request per segment (or one without segments), prompts built with brand examples.
    ``lm``: the model to write with, when the caller resolved it already (one for many products)."""
    attributes = params["attributes"]
    examples = brand_examples_select(
        attributes=attributes, collection=params.get("collection", ""), k=params.get("examples", 0)
    )
    from workers.runtime.adapters import lm_for

    brands = list(dict.fromkeys([*known_brands, *stored_brands()]))
    segments = params.get("segments") or [None]
    lm = lm or lm_for(params.get("model"), purpose="copy")  # the promoted copy adapter, unless one is named
    voice = voice_excerpt(examples[-1][1]) if examples else ""  # the nearest example is the last
    return [
        CopyRequest(
            params=params,
            segment=segment,
            messages=copy_messages(
                attributes=attributes, tone=params.get("tone", "neutral"), length=params.get("length", "medium"),
                segment=segment, examples=examples,
            ),
            known_brands=brands,
            lm=lm,
            voice=voice,
        )
        for segment in segments
    ]


def _generate_all(requests: Sequence[CopyRequest], ctx, concurrency: int) -> None:
    if concurrency > 1 and len(requests) > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(requests))) as pool:
            list(pool.map(lambda r: copy_generate(r, ctx), requests))
    else:
        for r in requests:
            copy_generate(r, ctx)


def copy_run(*, params: dict, ctx: RunnerContext) -> JobResult:
    started = time.monotonic()
    requests = copy_prepare(params)
    ctx.progress(0.05, f"{len(requests)} segment(s) to write")
    _generate_all(requests, ctx, concurrency=len(requests))
    stop_reason = ctx.stop_reason()
    candidates = []
    for request in requests:
        for description, attempts in zip(request.descriptions, request.attempts):
            candidates.append(copy_candidate(request, description, attempts, stop_reason))
    ctx.text_emit({i: c.text for i, c in enumerate(candidates)})
    lm = requests[0].lm
    return JobResult(
        candidates=candidates,
        model_version=lm.version,
        usage={
            "prompt_tokens": sum(r.prompt_tokens * len(r.descriptions) for r in requests),
            "completion_tokens": sum(c.completion_tokens for c in candidates),
            "seconds": round(time.monotonic() - started, 4),
            "segments": len(requests),
            "regenerations": sum(sum(r.attempts) - len(r.attempts) for r in requests),
            "passed": sum(1 for c in candidates if c.metadata["checks"]["passed"]),
            "device": lm.device,
        },
    )


def copy_draft(
    params_list: Sequence[dict],
    *,
    known_brands: Sequence[str] = (),
    concurrency: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> list[list[CandidateResult]]:
    """The copy runner's steps for many products in this process (``copy_batch``,
    ``copy_evaluate``): params validated by the kind's serializer first, products generated from
    ``concurrency`` threads so the engine batches them. ``known_brands``: the catalogue's brands
    (a product claiming another product's brand is flagged)."""
    from generation.kinds.copy import CopyParamsSerializer

    validated = []
    for params in params_list:
        serializer = CopyParamsSerializer(data=params)
        serializer.is_valid(raise_exception=True)
        validated.append(dict(serializer.validated_data))
    ctx = NullContext()
    from workers.runtime.adapters import lm_for

    # DB reads here, on the caller's thread; the model once per name, not once per product
    lms = {name: lm_for(name, purpose="copy") for name in {params.get("model") for params in validated}}
    prepared = [copy_prepare(params, known_brands=known_brands, lm=lms[params.get("model")]) for params in validated]
    done = [0]

    def one(requests: list[CopyRequest]) -> list[CandidateResult]:
        _generate_all(requests, ctx, concurrency=1)
        out = [copy_candidate(r, d, a, None) for r in requests for d, a in zip(r.descriptions, r.attempts)]
        done[0] += 1
        if on_done:
            on_done(done[0])
        return out

    if concurrency > 1 and len(prepared) > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, prepared))
    return [one(r) for r in prepared]


# --- the bare model (the baseline copy_evaluate reports) -----------------------------------------

BARE_SYSTEM = "You are a copywriter for an online shop."


def copy_bare(attributes: Mapping[str, object], *, length: str = "medium") -> str:
    """The base model prompted with the attributes and nothing else: no examples, no started
    turn, no filtering, no regeneration."""
    from generation.lm import chat_input_ids
    from workers.ml.decoding import SamplingParams
    from workers.runtime.completions import completions_run
    from workers.runtime.models import lm_get

    lm = lm_get()
    facts = "\n".join(f"{k}: {', '.join(attribute_items(k, v))}" for k, v in attributes.items())
    turns = [
        {"role": "system", "content": BARE_SYSTEM},
        {"role": "user", "content": f"Write a product description for this product.\n{facts}"},
    ]
    ids = chat_input_ids(lm.tokenizer, prompt=None, messages=turns)
    sampling = SamplingParams(max_new_tokens=LENGTH_TOKENS.get(length, 170), temperature=0.0, repetition_penalty=1.05)
    return completions_run(lm, ids, sampling, NullContext())[0].text.strip()


# --- brand example embeddings --------------------------------------------------------------------


