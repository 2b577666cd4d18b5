"""The summary support check, on the ways a small model's summary goes wrong: numbers and names
that are in no cited item, the wrong direction, citations of items about something else, and
sentences that cite nothing."""

from generation.text.summarycheck import Source, sentence_support, summary_sentences, summary_support, support_problem

SOURCES = {
    3: Source("$BA - Boeing cuts 737 output by 10% after FAA probe https://t.co/x", "negative", ("BA",)),
    4: Source("Boeing shares slide as airlines cancel 1,200 orders", "negative", ("BA",)),
    5: Source("Boeing wins a big Qatar Airways order", "positive", ("BA",)),
    6: Source("Ford recalls 50,000 trucks in the U.S.", "negative", ("F",)),
}
TERMS = ["BA", "Boeing", "Boeing Co"]


def _problems(text: str) -> list[tuple[str, ...]]:
    return [c.problems for c in summary_support(text, sources=SOURCES, entity="BA", entity_terms=TERMS)]


def test_sentences_supported_by_their_items_pass():
    text = ("Boeing cut 737 output by 10% after an FAA probe [#3]. Shares slid as airlines cancelled 1200 orders [#4]. "
            "A Qatar Airways order was a bright spot [#5].")
    assert _problems(text) == [(), (), ()]
    assert support_problem(summary_support(text, sources=SOURCES, entity="BA", entity_terms=TERMS)) == ""


def test_numbers_and_names_must_be_in_the_cited_items_not_elsewhere():
    assert _problems("Boeing cut output by 20% [#3]. Airlines cancelled orders [#4].")[0] == ("the number 20 is in none of #3",)
    # 1,200 is in #4, not in #3: each sentence is judged by what it cites.
    assert _problems("Boeing cut 1,200 jobs [#3]. Airlines cancelled orders [#4].")[0] == ("the number 1200 is in none of #3",)
    assert _problems("Boeing fell [#3]. Microsoft and Airbus gained [#5].")[1] == (
        "the name Microsoft is in none of #5", "the name Airbus is in none of #5"
    )
    assert _problems("Regulators probe the 737 [#3]. Orders were cancelled [#4].")[0] == ("the name Regulators is in none of #3",)


def test_the_items_own_words_pass_possessives_units_and_dotted_acronyms_included():
    # Failures the checker showed on the shipped tweets citing themselves (alerts_evaluate's self_support_share).
    sources = {
        1: Source("Amazon files suit protesting Microsoft's JEDI cloud contract with Pentagon", "neutral", ("AMZN",)),
        2: Source("$FLOW $APO - Apollo near deal to buy SPX Flow power unit for $700M - Bloomberg", "positive", ("APO",)),
        3: Source("$AMRN - Amarin Corportion Plc: Now Compelling On Ex-U.S. Opportunity", "positive", ("AMRN",)),
        4: Source("$T - Irrational Market Drops AT&T Because Of Its Most Promising Business.", "neutral", ("T",)),
        5: Source("Dybeck Happe, who joins $GE from A.P Moller-Maersk, the world's biggest container shipping", "neutral", ("GE",)),
        6: Source("+Initiations 11/25: $ARVN $BMY-R $LULU", "neutral", ("LULU",)),
    }
    for pk, source in sources.items():
        check = sentence_support(source.text, [pk], sources=sources, entity=source.entities[0], entity_terms=source.entities)
        assert check.supported, (source.text, check.problems)


def test_the_entity_may_be_named_by_any_of_its_names_and_cited_items_must_be_about_it():
    assert _problems("$BA and Boeing Co's output was cut [#3]. Orders were cancelled [#4].") == [(), ()]
    problems = _problems("Boeing output was cut [#3]. Trucks were recalled in the U.S. [#6].")[1]
    assert problems == ("#6 is not about BA",)  # the U.S. is in #6 (dots or not): only the entity is wrong


def test_the_direction_of_sentiment_must_match_a_cited_item():
    assert _problems("Boeing shares rose on strong demand [#4]. Orders were cancelled [#4].")[0] == (
        "says sentiment is positive; none of #4 is positive or says so",
    )
    assert _problems("Boeing won an order [#5]. Shares fell [#5].")[1] == (
        "says sentiment is negative; none of #5 is negative or says so",
    )
    # An item scored neutral whose own words say "slides" supports a sentence that says so.
    neutral = {7: Source("Boeing shares slide in early trading", "neutral", ("BA",))}
    assert [c.problems for c in summary_support("Boeing shares slid [#7]. They slid early [#7].", sources=neutral,
                                                entity="BA", entity_terms=TERMS)] == [(), ()]


def test_uncited_and_unknown_citations_are_unsupported_and_trailing_citations_belong_to_their_sentence():
    assert summary_sentences("Output was cut. [#3] Orders fell [#4].") == [("Output was cut. [#3]", (3,)), ("Orders fell [#4].", (4,))]
    assert summary_sentences("[#3] Output was cut. [#4] Orders fell.") == [("[#3] Output was cut.", (3,)), ("[#4] Orders fell.", (4,))]
    assert _problems("Sentiment about Boeing is negative. Output was cut [#3].")[0] == ("cites no item",)
    assert _problems("Output was cut [#9]. Orders fell [#4].")[0] == ("cites #9, not behind the alert",)
    reason = support_problem(summary_support("Output was cut [#3]. Sales fell 30% [#4].", sources=SOURCES, entity="BA",
                                             entity_terms=TERMS))
    assert reason == "sentence 2 is unsupported: the number 30 is in none of #4"


def test_a_market_wide_summary_has_no_entity_to_check():
    checks = summary_support("Ford recalled 50,000 trucks [#6]. Boeing cut output [#3].", sources=SOURCES, entity="*")
    assert [c.problems for c in checks] == [(), ()]
