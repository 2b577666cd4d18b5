"""Repetition: repeated word n-grams, loop cutting, repeated-sentence dropping, looping decodes."""

from generation.text import repetition
from generation.text.repetition import loop_cut, repeated_ngram, repeated_ngram_text, repeats_drop


def test_loop_cut_truncates_at_the_sentence_before_the_first_repeated_4gram():
    text = "I can help with that. Please log in to your account. Then log in to your account again and again."
    assert repeated_ngram(text) == text.index("log in to your account again")
    cut, was_cut = loop_cut(text)
    assert was_cut and cut == "I can help with that. Please log in to your account."
    assert loop_cut("No repeats here at all.") == ("No repeats here at all.", False)


def test_repeats_drop_keeps_later_sentences_and_renumbers_steps():
    body = "1. Log in to your account.\n2. Open the orders page.\n3. Log in to your account now.\n4. Click cancel."
    text, dropped = repeats_drop("Sure.\n\n", body)
    assert dropped == 1 and text == "Sure.\n\n1. Log in to your account.\n2. Open the orders page.\n3. Click cancel."
    assert repeated_ngram(text) is None


def test_looping_decodings_are_recognised():
    assert repetition.looping("Shares fall to the the the lows")
    assert repetition.looping("Sea Malling Mids Mids")
    assert repetition.looping("up to the top and up to the top")  # a word 3-gram twice
    assert not repetition.looping("Shares fall to the lowest level in a year, the lowest since 2020.")
    assert not repetition.looping("$AAPL - Apple beats estimates; $AAPL up 3%")  # punctuation is not a word


def test_the_repeated_ngram_is_found_once_as_an_offset_and_as_words():
    text = "Soft and warm for you, soft and warm for you."
    assert repeated_ngram(text) == text.lower().index("soft and warm for", 1)
    assert repeated_ngram_text(text) == "soft and warm for"
    assert repeated_ngram("A sentence with no repeats at all.") is None
    assert repeated_ngram_text("A sentence with no repeats at all.") is None
