"""Figures of genmodel_evaluate that read the texts themselves."""

from workers.evaluation.genmodels import leads_with_must_keep_share


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
