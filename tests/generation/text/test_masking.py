"""The order vocabulary is shared by masking, reply post-processing and the safety filter."""

from generation.privacy import pii_mask
from generation.text import masking


def test_order_words_recognise_an_order_number_wherever_it_is_checked():
    assert pii_mask("my order number is 370795561790").text == "my order number is [ORDER_ID]"
    assert masking.ORDER_LEAD_BEFORE.search("please quote your invoice number ")
    assert not masking.ORDER_LEAD_BEFORE.search("please call our support line ")
    match = masking.ORDER_NUMBER.search("the tracking number 1234-5678 is attached")
    assert match and match.group("lead").lower().startswith("tracking")
