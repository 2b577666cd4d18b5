from generation.text.promises import affirmations_unbacked, speculations_unbacked

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


CONFIRMATION = ("I understand you were charged but did not receive an order confirmation. Please check your spam or "
                "junk folder first. If it is not there, log in to your account and open 'Order History': every "
                "order that was placed is listed there. If you cannot find it, contact us with the payment date.")
DELIVERY = ("Standard delivery takes 3-5 working days. Express delivery arrives the next working day when you order "
            "before 2 pm, and you can choose it at checkout. You can follow your parcel with the tracking link in "
            "your dispatch e-mail.")


def test_a_cause_or_advice_that_no_source_gives_is_found():
    charged = "I was charged 89 EUR but never got a confirmation e-mail for my order."
    assert speculations_unbacked(
        "I'm sorry to hear that; it's possible that the order may have been delayed due to unforeseen circumstances.",
        [CONFIRMATION, charged]) == ["it's possible that: delayed unforeseen", "may have been: delayed unforeseen",
                                     "due to: unforeseen circumstance"]
    faster = "Is there any way to get my order faster? I need it by Friday."
    assert speculations_unbacked("I recommend using a shipping service that allows you to track your order.",
                                 [DELIVERY, faster]) == ["i recommend: using shipping"]


def test_a_cause_or_advice_that_a_source_gives_passes():
    assert speculations_unbacked("I recommend checking your spam or junk folder for the confirmation.",
                                 [CONFIRMATION, "no confirmation e-mail"]) == []
    assert speculations_unbacked("We suggest choosing express delivery at checkout.", [DELIVERY, "faster?"]) == []
    assert speculations_unbacked("I recommend following your parcel with the tracking link.", [DELIVERY]) == []
    assert speculations_unbacked("I recommend contacting us with the payment date.", [CONFIRMATION]) == []  # "contact"
    # a cause no source gives is a guess, however plausible
    assert speculations_unbacked("Due to high demand, delivery may take a little longer.", [DELIVERY]) == [
        "due to: high demand"]
