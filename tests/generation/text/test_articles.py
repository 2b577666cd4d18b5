"""Indefinite articles in generated copy: a/an by sound, none before a plural attribute item."""

import pytest

from generation.text.articles import article_for, articles_fix


@pytest.mark.parametrize(("word", "article"), [
    ("inner", "an"), ("height-adjustable", "a"), ("hour", "an"), ("honest", "an"), ("useful", "a"),
    ("umbrella", "an"), ("one-piece", "a"), ("LED", "an"), ("USB-C", "a"), ("IPX4", "an"), ("HDMI", "an"),
    ("8-hour", "an"), ("11-inch", "an"), ("18", "an"), ("1", "a"), ("27-inch", "a"), ("European", "a"),
])
def test_the_article_follows_the_sound_of_the_next_word(word, article):
    assert article_for(word) == article


def test_what_the_copy_model_wrote_is_corrected_and_nothing_else_changes():
    features = ["leather handles", "inner zip pocket", "silent clicks", "height-adjustable stand", "IPX4 rating"]
    assert articles_fix("It has a leather handles, an inner zip pocket and a silent clicks.", features) == \
        "It has leather handles, an inner zip pocket and silent clicks."
    assert articles_fix("It has an height-adjustable stand and a IPX4 rating.", features) == \
        "It has a height-adjustable stand and an IPX4 rating."
    assert articles_fix("A elegant bag. Rich in vitamin A and a vitamin E oil.") == \
        "An elegant bag. Rich in vitamin A and a vitamin E oil."
    assert articles_fix("It comes in a 8 hours battery life.", ["8 hours"]) == "It comes in an 8 hours battery life."


def test_a_plural_sold_as_one_is_a_pair():
    assert articles_fix("The Copperleaf Straight Jeans is a jeans. It is an indigo jeans.", ["Jeans", "Indigo"]) == \
        "The Copperleaf Straight Jeans is a pair of jeans. It is a pair of indigo jeans."
    assert articles_fix("It is a pair of boots, yours for a pair of dark boots.", ["Boots"]) == \
        "It is a pair of boots, yours for a pair of dark boots."
    assert articles_fix("It is a set of boots.", ["Boots"]) == "It is a set of boots."
