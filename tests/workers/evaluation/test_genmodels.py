"""Figures of genmodel_evaluate that read the texts themselves."""

import pytest

from workers.evaluation.genmodels import leads_with_must_keep_share, longest_word_pick, must_keep_pick


def test_a_variant_that_opens_with_its_must_keep_word_counts_only_where_its_source_does_not():
    rows = [
        {"source": "The Grid Cufflinks are made of steel.", "must_keep": ["Cufflinks"],
         "variants": ["Cufflinks are made from stainless steel.", "These steel cufflinks come in pairs.",
                      "They are steel. Cufflinks come in pairs."]},
        {"source": "Cotton shirts breathe.", "must_keep": ["Cotton"], "variants": ["Cotton keeps you cool."]},
        {"source": "A plain sentence.", "must_keep": [], "variants": []},
    ]
    # the first and third variants open a sentence with the word; the shirt's source opens with it too
    assert leads_with_must_keep_share(rows) == round(2 / 4, 4)
    assert leads_with_must_keep_share([]) == 0.0


@pytest.mark.parametrize(
    ("source", "picked"),
    [
        ("The Everyday Link Bracelet from Corbelle is a chain bracelet made of sterling silver.", ["bracelet"]),
        ("In use, it is specified as the first layer under a fleece or shell.", ["fleece"]),  # a material
        ("It is a wall-hung vanity unit made from moisture-resistant MDF.", ["MDF"]),
        ("Or maybe a little green?", ["green"]),  # a colour
        ("Elasticated cuffs hug your wrists.", ["Elasticated"]),  # none of those: the longest word
        ("It is on.", []),
    ],
)
def test_the_evaluation_keeps_the_word_a_marketer_would(source, picked):
    """The product type, else the material, else the colour, as a common noun; the longest word
    only where the sentence names none of them (it picked "Everyday" and "specified")."""
    assert must_keep_pick(source) == picked
    assert longest_word_pick("Between studio and street, there is the Soline Studio Hoodie.") == ["Between"]
