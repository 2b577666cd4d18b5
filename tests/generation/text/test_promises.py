from generation.text.promises import affirmations_unbacked

PAYMENT = ("At checkout you can pay by credit or debit card (Visa, Mastercard, American Express), PayPal, Apple Pay "
           "or Google Pay. If a payment does not go through, check that the billing address matches the one your bank holds.")
STORES = "We sell online only. Every product page has a size guide and measurements, and returns are free within 30 days."


def test_an_opening_that_grants_what_the_customer_asked_and_no_source_says_is_found():
    assert affirmations_unbacked("At checkout, you can pay by bank transfer.",
                                 "Can I pay by bank transfer instead of card?", [PAYMENT]) == ["you can: transfer"]
    assert affirmations_unbacked("We do have a variety of shoe options that fit your size 47.",
                                 "Do you have the trail running shoes in a size 47?", [STORES]) == ["we do have: shoe"]


def test_an_opening_that_grants_what_a_source_says_passes():
    assert affirmations_unbacked("Yes, you can pay with PayPal or by card.", "Can I pay with PayPal?", [PAYMENT]) == []
    returns = "You can return any item within 30 days of delivery; a tent that does not suit you can come back too."
    assert affirmations_unbacked("Of course, you can send one of the tents back.", "Can I send one of the two tents back?",
                                 [returns]) == []
    # words the customer did not use are not this guard's: the drift and figure guards see to them
    assert affirmations_unbacked("You can also reach us by phone.", "Where is my parcel?", [PAYMENT]) == []
