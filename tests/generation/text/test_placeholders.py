"""Placeholders: filling, loose spellings and masks turned into them, made-up values replaced."""

from generation.text.placeholders import (
    figures_unbacked,
    invented_values_replace,
    placeholders_fill,
    placeholders_normalise,
    refusals_unbacked,
)


def test_placeholders_fill_case_insensitive_and_unknown_stay_visible():
    text = "Order {{order number}} for {{Customer_Name}} ships via {{Carrier}}."
    filled = placeholders_fill(text, {"Order Number": "A-123", "customer name": "Ann"})
    assert filled == "Order A-123 for Ann ships via {{Carrier}}."


def test_loose_braces_and_masked_data_become_placeholders():
    assert placeholders_normalise("see {Order Number}} and {{ Website Name }") == "see {{Order Number}} and {{Website Name}}"
    assert placeholders_normalise("order number [PHONE] from [EMAIL]") == "order number {{Order Number}} from {{Email Address}}"


def test_invented_values_are_replaced_by_placeholders_known_ones_kept():
    text = "Your order number is 98765432. Call 1-800-555-0199 or mail help@shop.example. It costs $25."
    cleaned, invented = invented_values_replace(text, ["The fee is $25.", "ask about order 777"])
    assert "98765432" not in cleaned and "1-800-555-0199" not in cleaned and "help@shop.example" not in cleaned
    assert "{{Order Number}}" in cleaned and "{{Email Address}}" in cleaned and "$25" in cleaned
    assert set(invented) == {"98765432", "1-800-555-0199", "help@shop.example"}


def test_a_long_order_number_masked_as_a_phone_or_card_becomes_the_order_placeholder():
    # pii_mask types "order number 7734 5521 9981" as a phone; after an order word it is an order id
    assert placeholders_normalise("your order number [PHONE] ships today") == "your order number {{Order Number}} ships today"
    assert placeholders_normalise("the invoice is [CARD]") == "the invoice is {{Order Number}}"
    assert placeholders_normalise("call us on [PHONE]") == "call us on {{Phone Number}}"


def test_a_placeholder_in_square_brackets_is_a_placeholder():
    assert placeholders_normalise("call [Customer Support Phone Number] or use [Live Chat].") == (
        "call {{Customer Support Phone Number}} or use {{Live Chat}}.")
    assert placeholders_normalise("between [X to Y] hours, see [Note] and [ORDER_ID]") == (
        "between [X to Y] hours, see [Note] and {{Order Number}}")


def test_figures_no_source_states_are_found_small_ones_too():
    known = ["Every product has a 2-year warranty; repairs take 2 to 3 weeks.", "1. Log in. 2. Open the order."]
    assert figures_unbacked("A 10-year warranty, 20% off, 3.5 kg, order 00012.", known) == ["10", "20", "3.5", "00012"]
    assert figures_unbacked("Our 2-year warranty covers it: 1. Log in, 2. repairs take 3 weeks.", known) == []
    assert figures_unbacked("{{Order Number}} and [ORDER_ID] and v2", []) == []
    # a source's step numbers back no figure: "within 1 week" where the doc says 30 days
    doc = ["You can exchange within 30 days.\n\nTo exchange an item:\n1. Log in.\n2. Choose Exchange."]
    assert figures_unbacked("Of course, you can exchange the jacket within 1 week.", doc) == ["1"]
    assert figures_unbacked("Sure, within 30 days:\n1. Log in.\n2. Choose Exchange.", doc) == []


def test_an_opening_that_turns_the_customer_down_where_no_source_does_is_found():
    known = ["We refund within 2 working days of your return reaching our warehouse.", "can I get a refund?"]
    assert refusals_unbacked("However, I must inform you that there is no refund available for Klarna.", known) == [
        "must inform you", "there is no"]
    assert refusals_unbacked("Unfortunately, the website doesn't allow you to log in.", known) == [
        "unfortunately", "doesn't allow"]
    assert refusals_unbacked("I'm happy to help with your refund.", known) == []
    assert refusals_unbacked("Unfortunately we cannot change it.", ["Unfortunately, we cannot change a dispatched order."]) == []
    # a restriction no source makes: the payment answer lists cards, PayPal and wallets
    payment = ["At checkout you can pay by credit or debit card, PayPal, Apple Pay or Google Pay.", "pay in instalments?"]
    assert refusals_unbacked("Thank you for asking. At present, we only accept PayPal and Apple Pay.", payment) == [
        "we only accept"]
    assert refusals_unbacked("We only ship within Europe.", ["We only ship within Europe and North America."]) == []
