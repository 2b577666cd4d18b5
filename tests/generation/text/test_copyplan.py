"""Sentence plans of product copy: every fact in exactly one sentence, in a shop's order, more
sentences for a longer text."""

import pytest

from generation.text.copycheck import attribute_facts
from generation.text.copyplan import copy_plan, description_facts, facts_lines

DUFFEL = {
    "name": "Weekender Duffel", "brand": "Alder & Co", "category": "Duffel bag", "colour": "Cognac",
    "material": "Full-grain leather", "price": "289 EUR",
    "features": ["brass hardware", "detachable shoulder strap", "padded shoe compartment"],
    "audience": "frequent travellers", "capacity": "45 litres", "warranty": "2 years",
    "care": "condition twice a year",
}


@pytest.mark.parametrize("length", ["medium", "long"])
def test_every_fact_is_in_exactly_one_sentence(length):
    plan = copy_plan(DUFFEL, length)
    planned = [f for group in plan for f in group]
    assert sorted(planned, key=str) == sorted(attribute_facts(DUFFEL), key=str)
    assert all(group for group in plan)


def test_a_short_text_leaves_specifications_care_and_warranty_to_the_bullets():
    plan = copy_plan(DUFFEL, "short")
    planned = [f for group in plan for f in group]
    assert len(planned) == len(set(planned))
    assert {f.key for f in planned} == {"name", "brand", "category", "colour", "material", "features", "audience", "price"}
    assert description_facts(DUFFEL, "short") == planned
    assert description_facts(DUFFEL, "long") == [f for group in copy_plan(DUFFEL, "long") for f in group]


def test_the_product_comes_first_and_care_and_warranty_last():
    plan = copy_plan(DUFFEL, "medium")
    assert {f.key for f in plan[0]} >= {"name", "brand", "category"}
    assert {f.key for f in plan[-1]} == {"care", "warranty"}
    # care is never paired with a feature, the pairing the whole-text model got wrong
    assert not any({"care", "features"} <= {f.key for f in group} for group in plan)


def test_a_longer_text_has_more_sentences_with_fewer_facts_each():
    short, medium, long = (copy_plan(DUFFEL, length) for length in ("short", "medium", "long"))
    assert len(short) < len(medium) < len(long)
    assert max(len([f for f in g if f.key == "features"]) for g in long) <= 3
    assert [len([f for f in g if f.key == "features"]) for g in long if any(f.key == "features" for f in g)] == [3]
    five = {**DUFFEL, "features": ["a", "b", "c", "d", "e"]}
    features = [[f.value for f in g if f.key == "features"] for g in copy_plan(five, "long")]
    assert [f for f in features if f] == [["a", "b"], ["c", "d", "e"]]  # no lone last feature


def test_without_sizes_the_audience_joins_the_opening():
    plan = copy_plan({"name": "Tote", "category": "bag", "audience": "women", "price": "20 EUR"}, "medium")
    assert {f.key for f in plan[0]} == {"name", "category", "audience"}


def test_facts_lines_group_items_of_a_key():
    lines = facts_lines([f for f in attribute_facts(DUFFEL) if f.key in ("features", "colour")])
    assert lines.splitlines() == ["- Colour: Cognac",
                                  "- Features: brass hardware, detachable shoulder strap, padded shoe compartment"]
