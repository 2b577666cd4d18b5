import pytest

from generation.text.product_names import (
    ProductNames,
    delexicalise,
    has_slots,
    names_read,
    relexicalise,
    slot_words,
)


@pytest.mark.parametrize(
    ("text", "name", "brand", "slotted"),
    [
        ("The Linnet Wrap Dress from Brackenlea is a wrap dress in forest green.", "Linnet Wrap Dress", "Brackenlea",
         "The {name} from {brand} is a wrap dress in forest green."),
        ("The Lumeira by Eldhaven is a handpan shaped from nitrided steel.", "Lumeira", "Eldhaven",
         "The {name} by {brand} is a handpan shaped from nitrided steel."),
        ("Altura Field's Trek Hiking Skort is made from nylon.", "Trek Hiking Skort", "Altura Field",
         "{brand}'s {name} is made from nylon."),
        ("Meet the Steadi M3 from Orbix, a gimbal for phones.", "Steadi M3", "Orbix",
         "Meet the {name} from {brand}, a gimbal for phones."),
        ("Come home to the Hearthside Slipper from Wendmoor.", "Hearthside Slipper", "Wendmoor",
         "Come home to the {name} from {brand}."),  # the full stop is the sentence's
        ("The Kingsmere Chess Set from Halloway & Finch is made in walnut.", "Kingsmere Chess Set", "Halloway & Finch",
         "The {name} from {brand} is made in walnut."),
    ],
)
def test_a_product_s_names_are_read_as_slots_and_put_back(text, name, brand, slotted):
    names = names_read(text)
    assert names == ProductNames(name=name, brand=brand)
    assert delexicalise(text, names) == slotted
    assert relexicalise(slotted, names) == text


@pytest.mark.parametrize(
    "text",
    [
        "Made from Italian Leather, it lasts for years.",  # a verb, then a material: no name
        "Sourced by Hand in Italy.",
        "Network connection is via Wi-Fi 6 or Gigabit Ethernet.",
        "Norrlin's TV unit is made from MDF.",  # a one-word name after a possessive: not taken
        "The colour is graphite.",
    ],
)
def test_text_that_names_no_product_is_left_as_it_is(text):
    names = names_read(text)
    assert not names
    assert delexicalise(text, names) == text


def test_attributes_name_the_product_where_the_text_writes_them():
    text = "Cold ears? The Puffball Bobble Beanie from Ruffleduck is a bobble hat."
    names = names_read(text, {"name": "Puffball Bobble Beanie", "brand": "Ruffleduck", "colour": "mustard"})
    assert names == ProductNames(name="Puffball Bobble Beanie", brand="Ruffleduck")
    # a value the text does not write is no slot
    assert names_read("A bobble hat in mustard.", {"name": "Puffball Bobble Beanie"}) == ProductNames()


def test_a_short_form_of_the_name_is_its_slot_too():
    names = ProductNames(name="Isaura Slingback Pump", brand="Velle")
    assert delexicalise("The Isaura is priced at 165 EUR.", names) == "The {name} is priced at 165 EUR."


def test_a_slot_with_no_value_makes_up_no_name():
    assert relexicalise("The {name} from {brand} is a wrap dress.", ProductNames()) == "This product is a wrap dress."
    assert relexicalise("It is priced like the {name}. The bag from {brand} is tan.", ProductNames()) == (
        "It is priced like this product. The bag is tan.")
    assert relexicalise("The {name} from {brand} is a tote.", ProductNames(brand="Kite")) == (
        "This product from Kite is a tote.")
    assert not has_slots(relexicalise("{brand}'s {name} is a tote made by {brand}.", ProductNames()))
    assert relexicalise("The {brand} LED floodlight is rated at 50 W.", ProductNames()) == (
        "The LED floodlight is rated at 50 W.")


@pytest.mark.parametrize("text", ["The {brand} from {name} is a water bottle.", "{brand} shapes the {name} from oak."])
def test_slots_in_each_other_s_roles_are_not_filled_and_show_as_slots(text):
    # "The the brand from this product" is no sentence: kept with its slots, the caller drops it
    assert has_slots(relexicalise(text, ProductNames()))
    assert has_slots(relexicalise("The {brand} from {name} is a bottle.", ProductNames(name="Aqua One", brand="Kite")))


def test_must_keep_words_of_a_name_are_guided_as_its_slot():
    names = ProductNames(name="Linnet Wrap Dress", brand="Brackenlea")
    assert slot_words(["linnet", "Dress", "crepe", "Brackenlea"], names) == ["{name}", "crepe", "{brand}"]
