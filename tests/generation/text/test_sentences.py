"""Sentences: one definition of a sentence end for every splitter."""

from generation.text.sentences import sentence_ends, sentences_split, unfinished_cut


def test_sentences_end_at_punctuation_with_closing_quotes_and_at_line_breaks():
    text = 'It ships today. "Really?" Yes!\nNext line'
    assert sentences_split(text) == ["It ships today.", '"Really?"', "Yes!", "Next line"]


def test_a_list_step_number_ends_no_sentence():
    assert sentences_split("Do this:\n1. Open the app.\n2. Tap Orders.") == [
        "Do this:",
        "1. Open the app.",
        "2. Tap Orders.",
    ]


def test_capitalised_splits_only_where_the_next_sentence_starts_like_one():
    text = "U.S. stocks fell 2.5 per cent. [#12] Analysts expect more."
    assert sentences_split(text, capitalised=True) == ["U.S. stocks fell 2.5 per cent.", "[#12] Analysts expect more."]
    assert len(sentences_split(text)) == 3  # "U.S." ends a sentence for the plain splitter


def test_sentence_ends_are_offsets_within_a_window():
    text = "One. Two. Three."
    assert sentence_ends(text) == [4, 9, 16]
    assert sentence_ends(text, end=8) == [4]


def test_an_unfinished_last_sentence_is_dropped():
    assert unfinished_cut("Your order ships today. It will arrive in") == "Your order ships today."
    assert unfinished_cut("Your order ships today.") == "Your order ships today."


def test_text_after_a_list_starts_its_own_paragraph():
    from generation.text.sentences import list_end_paragraph

    text = "Please follow these steps:\n\n1. Log in.\n2. Click Cancel.\nIf you need help, call us.\n\nThanks."
    assert list_end_paragraph(text) == ("Please follow these steps:\n\n1. Log in.\n2. Click Cancel.\n\n"
                                        "If you need help, call us.\n\nThanks.")
    assert list_end_paragraph("- a\n- b\nAnd more.") == "- a\n- b\n\nAnd more."
    unchanged = "1. Open Orders.\n   Then pick one.\n2. Click it.\n- or tap it\n\nDone."  # continuation, sub-items
    assert list_end_paragraph(unchanged) == unchanged
