"""pii_mask: what it masks, what it must leave alone (dates, prices, quantities), and how."""

import pytest

from generation.privacy import MaskResult, PiiKind, pii_mask

E, P, C, I, O = PiiKind.EMAIL, PiiKind.PHONE, PiiKind.CARD, PiiKind.IBAN, PiiKind.ORDER_ID


@pytest.mark.parametrize(
    ("text", "masked", "found"),
    [
        # e-mail addresses
        ("write to jane.doe@example.com please", "write to [EMAIL] please", [E]),
        ("Mail: J.O'Brien+orders@mail.example.co.uk.", "Mail: J.O'[EMAIL].", [E]),
        ("<bob_smith-99@sub.domain.io>", "<[EMAIL]>", [E]),
        # phone numbers in common national and international forms
        ("call +1 (555) 123-4567 today", "call [PHONE] today", [P]),
        ("my number is 555-123-4567", "my number is [PHONE]", [P]),
        ("(555) 123 4567", "[PHONE]", [P]),
        ("555.123.4567", "[PHONE]", [P]),
        ("ring 555-1234", "ring [PHONE]", [P]),
        ("+44 20 7946 0958", "[PHONE]", [P]),
        ("UK mobile 07700 900123", "UK mobile [PHONE]", [P]),
        ("appelez le 06 12 34 56 78", "appelez le [PHONE]", [P]),
        ("06-12-34-56-78", "[PHONE]", [P]),
        ("0612345678", "[PHONE]", [P]),
        ("+4915112345678", "[PHONE]", [P]),
        ("0049 151 1234 5678", "[PHONE]", [P]),
        ("Tel: 5551234567.", "Tel: [PHONE].", [P]),
        ("phone 12345678", "phone [PHONE]", [P]),
        # payment cards: Luhn-valid, with or without spaces or dashes
        ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27", [C]),
        ("4111-1111-1111-1111", "[CARD]", [C]),
        ("5500005555555559", "[CARD]", [C]),
        ("amex 3782 822463 10005", "amex [CARD]", [C]),
        # IBANs, mod-97 checked
        ("IBAN DE89 3704 0044 0532 0130 00, thanks", "IBAN [IBAN], thanks", [I]),
        ("GB82WEST12345698765432", "[IBAN]", [I]),
        # order ids
        ("where is ORD-12345?", "where is [ORDER_ID]?", [O]),
        ("order #123456 is late", "order [ORDER_ID] is late", [O]),
        ("see #123456", "see [ORDER_ID]", [O]),
        ("cancel purchase 113542617735902", "cancel purchase [ORDER_ID]", [O]),
        ("my order number is 370795561790", "my order number is [ORDER_ID]", [O]),
        ("your order with the number 00004587345", "your order with the number [ORDER_ID]", [O]),
        ("find my bill #00108", "find my bill [ORDER_ID]", [O]),
        ("tracking no. 1Z999AA10123456784", "tracking no. [ORDER_ID]", [O]),
        ("invoice: INV-2024-0042", "invoice: [ORDER_ID]", [O]),
        ("order number {{370795561790}}", "order number {{[ORDER_ID]}}", [O]),
        # several at once, reported in text order
        (
            "I'm jane@example.com, +1 555 123 4567, card 4111111111111111, order ORD-98765.",
            "I'm [EMAIL], [PHONE], card [CARD], order [ORDER_ID].",
            [E, P, C, O],
        ),
    ],
)
def test_masks_personal_data_with_typed_placeholders(text, masked, found):
    assert pii_mask(text) == (masked, found)


@pytest.mark.parametrize(
    "text",
    [
        # dates and times
        "Delivered on 2024-01-15 at 10:30.",
        "It was due 15/01/2024, now it says 01.02.2024",
        "between 12-31-2023 and 2024/1/5",
        "2024-01-15T10:30:00Z",
        "on 2024-01-15 10:30:45 UTC",
        "from 2019-2020 and 1990 – 95",
        # prices and amounts
        "it cost $1,234.56 and then € 12,50",
        "refund of 1.234,56 EUR please",
        "I paid 1299.99 USD for it",
        "£1 234 567",
        "about 99 dollars",
        # plain numbers, quantities, versions, addresses
        "we sold 1 234 567 units, 1,234,567 in total, 1.234.567 by May",
        "pi is 3.14159265",
        "ZIP 12345-6789",
        "pages 1000-2000",
        "version 1.2.3.4 on 192.168.1.1",
        "timestamp 1700000000",
        "order 3 items of 250 ml",
        "a 16-digit number that fails Luhn: 4111 1111 1111 1112",
        "room 12, floor 3, 4 guests, 2 nights",
        "in 2024 we moved",
        # already masked text and Bitext-style placeholders
        "order [ORDER_ID], call [PHONE], mail [EMAIL]",
        "Please call {{Customer Support Phone Number}} about {{Order Number}}.",
        "",
    ],
)
def test_leaves_dates_prices_and_other_numbers_alone(text):
    assert pii_mask(text) == (text, [])


def test_a_phone_next_to_a_date_is_still_masked():
    assert pii_mask("call 555-123-4567 2024-01-15").text == "call [PHONE] 2024-01-15"
    assert pii_mask("on 15/01/2024 call 0612345678").text == "on 15/01/2024 call [PHONE]"


def test_masking_is_idempotent():
    text = "jane@example.com +1 555 123 4567 4111 1111 1111 1111 DE89370400440532013000 ORD-12345 #123456"
    once = pii_mask(text)
    assert once.found == [E, P, C, I, O, O]
    assert pii_mask(once.text) == (once.text, [])


def test_result_is_a_typed_named_tuple():
    result = pii_mask("x@y.io")
    assert isinstance(result, MaskResult)
    text, found = result
    assert (text, found) == ("[EMAIL]", [PiiKind.EMAIL])
    assert found[0] == "EMAIL"  # a str enum: JSON-serialisable and comparable with plain strings
