"""The order vocabulary is shared by masking, reply post-processing and the safety filter."""

from generation.privacy import pii_mask
from generation.text import masking


def test_order_words_recognise_an_order_number_wherever_it_is_checked():
    assert pii_mask("my order number is 370795561790").text == "my order number is [ORDER_ID]"
    assert masking.ORDER_LEAD_BEFORE.search("please quote your invoice number ")
    assert not masking.ORDER_LEAD_BEFORE.search("please call our support line ")
    match = masking.ORDER_NUMBER.search("the tracking number 1234-5678 is attached")
    assert match and match.group("lead").lower().startswith("tracking")


def test_an_order_number_after_an_order_word_is_an_order_id_not_a_phone():
    """Issue 17: a masked source read "the order number [PHONE]"."""
    cases = [
        ("the order number 1234567890", "the order number [ORDER_ID]"),
        ("order ORD-77812", "order [ORDER_ID]"),
        # the Bitext answers that read "[PHONE]" or "[CARD]" before: an earlier order word that is
        # not followed by an id no longer hides the next one, and grouped digits stay one id
        ("to cancel your purchase with the order number 732201349959.", "to cancel your purchase with the order number [ORDER_ID]."),
        ("purchase order 00123842.", "purchase order [ORDER_ID]."),
        ("Find the order with order number 00123842 in the list", "Find the order with order number [ORDER_ID] in the list"),
        ("the order labeled with the number 113542617735902", "the order labeled with the number [ORDER_ID]"),
        ("my order no. 415 555 0100", "my order no. [ORDER_ID]"),
        ("order number 7734 5521 9981", "order number [ORDER_ID]"),
        ("I ordered a jacket two weeks ago (order ORD-77812) and it still has not arrived",
         "I ordered a jacket two weeks ago (order [ORDER_ID]) and it still has not arrived"),
    ]
    for text, masked in cases:
        assert pii_mask(text).text == masked, text


def test_a_real_phone_number_stays_a_phone_next_to_an_order():
    assert pii_mask("call us on +1 415 555 0100").text == "call us on [PHONE]"
    assert pii_mask("the order number +1 415 555 0100").text == "the order number [PHONE]"  # international: a phone
    assert pii_mask("my order has not arrived, call me on 4155550100").text == "my order has not arrived, call me on [PHONE]"
    assert pii_mask("about my order ORD-77812, my phone is +1 415 555 0100").text == (
        "about my order [ORDER_ID], my phone is [PHONE]"
    )
    assert pii_mask("my order number is 1234567890 and my phone is +1 415 555 0100").text == (
        "my order number is [ORDER_ID] and my phone is [PHONE]"
    )
