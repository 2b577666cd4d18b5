"""Sentence plans of product copy: which facts each sentence of a description states.

A 135M model that writes a whole description from a list of a dozen facts pairs them wrongly
("an inner zip pocket for machine wash cold", "Care comes through the magnetic closure") and adds
parts of its own. Written one sentence at a time, each sentence given two to four facts that belong
together, it has less to mix up, and each sentence can be checked, redrawn or replaced alone.

``copy_plan`` groups a product's facts into sentences, in the order a shop's text gives them:
what it is (name, brand, category), how it looks (colour, material, fit, pattern), what it has
(features, a few per sentence), who it is for and which sizes, the other specifications, the
price, then care and warranty. The length decides how many facts share a sentence. The groups of
the team's corpus (``copy_corpus --format sentences``, the facts each corpus sentence states by
``copycheck.facts_stated``) are what the copy model learns to write a sentence from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from generation.text.copycheck import Fact, attribute_facts

OPENING = ("name", "brand", "category")
LOOK = ("colour", "color", "colours", "colors", "material", "fit", "pattern", "finish")
FEATURES = ("features", "feature")
WHO = ("sizes", "size", "audience")
PRICE = ("price",)
CLOSING = ("care", "warranty")
_PLACED = frozenset(OPENING + LOOK + FEATURES + WHO + PRICE + CLOSING)

# Features per sentence: a short text lists them, a long one gives each pair a sentence.
FEATURES_PER_SENTENCE = {"short": 4, "medium": 3, "long": 2}


def _chunks(items: list[Fact], size: int) -> list[list[Fact]]:
    """``items`` ``size`` at a time, a lone last one joining the chunk before it ("It comes with
    cupsole." read as an afterthought)."""
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1 and size > 1:
        last = chunks.pop()
        chunks[-1] = chunks[-1] + last
    return chunks


def copy_plan(attributes: Mapping[str, object], length: str = "medium") -> list[list[Fact]]:
    """The product's facts grouped into sentences, in order; every fact in exactly one group, except
    in a short text, which leaves the other specifications, care and warranty to the bullet points
    (``description_facts``)."""
    facts = attribute_facts(attributes)

    def of(keys: Sequence[str]) -> list[Fact]:
        return [f for f in facts if f.key in keys]

    opening, look, features = of(OPENING), of(LOOK), of(FEATURES)
    sizes, audience, price = of(("sizes", "size")), of(("audience",)), of(PRICE)
    closing = of(CLOSING)
    others: dict[str, list[Fact]] = {}
    for f in facts:
        if f.key not in _PLACED:
            others.setdefault(f.key, []).append(f)
    if not sizes:  # "a blouse made for women": the audience joins what the product is
        opening, audience = opening + audience, []
    who = sizes + audience
    other_groups = list(others.values())
    feature_groups = _chunks(features, FEATURES_PER_SENTENCE.get(length, 3))

    if length == "short":  # what it is, how it looks, what it has, the price: the rest is the bullets'
        plan = [opening + look, [f for g in feature_groups for f in g] + who, price]
    elif length == "long":
        plan = [opening, look, *feature_groups, who, *other_groups, price, *[[f] for f in closing]]
    else:
        head = [opening + look] if len(opening) + len(look) <= 4 else [opening, look]
        pairs = [[f for g in other_groups[i : i + 2] for f in g] for i in range(0, len(other_groups), 2)]
        plan = [*head, *feature_groups, who, *pairs, price, closing]
    plan = [group for group in plan if group]
    # A lone price or care line after a short group reads as an afterthought: join them.
    merged: list[list[Fact]] = []
    for group in plan:
        if merged and len(group) == 1 and group[0].key in PRICE and len(merged[-1]) <= 2 and length != "long":
            merged[-1] = merged[-1] + group
        else:
            merged.append(group)
    return merged


def description_facts(attributes: Mapping[str, object], length: str = "medium") -> list[Fact]:
    """The facts a description of ``length`` states (``copy_plan``'s), in order."""
    return [f for group in copy_plan(attributes, length) for f in group]


def facts_lines(facts: Sequence[Fact]) -> str:
    """``- Key: item, item`` lines, one per key, in the facts' order (the sentence prompt's list)."""
    grouped: dict[str, list[str]] = {}
    for f in facts:
        grouped.setdefault(f.key, []).append(f.value)
    return "\n".join(f"- {key[:1].upper() + key[1:]}: {', '.join(values)}" for key, values in grouped.items())
