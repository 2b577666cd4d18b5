"""A product's own names as slots: ``{name}`` and ``{brand}`` in place of "Linnet Wrap Dress" and
"Brackenlea" (delexicalisation, as data-to-text generators do).

A sentence VAE trained on product copy sees each name once or twice, so its decoder learns to
write *a* name, not the source's: a quarter of its product variants invented one ("The Tearl
Bracelet from Kite is a wristwatch") and were dropped. Trained on "The {name} from {brand} is a
wrap dress ...", it learns where a name goes; the source's names are put back after decoding
(``relexicalise``), and a slot with no value to put back reads "this product" (a sample from the
prior names no real product, so it invents none).

Pure Python, shared by the training corpus (names from the rows' attributes) and the variant,
interpolation, sample and augment jobs (names from the job's attributes, else read from the text:
``names_read``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_SLOT = "{name}"
BRAND_SLOT = "{brand}"
SLOTS = (NAME_SLOT, BRAND_SLOT)

# One capitalised word of a name ("Linnet", "M3", "Précieuse", "O'Neill", "Wi-Fi"), and runs of them.
# A full stop is part of a word only inside it ("St.Ives"), never the sentence's; "&" joins words.
_CAP = r"[A-Z](?:[\w'’&-]|\.(?=\w))*"
_RUN = rf"{_CAP}(?:\s+(?:&\s+)?(?:{_CAP}|\d(?:\w|\.(?=\w))*))*"
# "The Linnet Wrap Dress from Brackenlea", "the Lumeira by Eldhaven": a name, then its brand.
_NAME_FROM_BRAND = re.compile(rf"(?P<the>\b[Tt]he\s+)?(?P<name>{_RUN})\s+(?:from|by)\s+(?P<brand>{_RUN})")
# "Altura Field's Trek Hiking Skort": a brand's name of two or more words.
_BRAND_S_NAME = re.compile(rf"(?P<brand>{_RUN})['’]s\s+(?P<name>{_CAP}(?:\s+(?:{_CAP}|\d(?:\w|\.(?=\w))*))+)")
_NOT_NAMES = frozenset({"i", "it", "its", "this", "these", "our", "your", "each", "every", "and", "or", "made",
                        "crafted", "designed", "sourced", "inspired", "imported", "shipped", "built", "handmade"})


@dataclass(frozen=True)
class ProductNames:
    """A product's name and brand as its text writes them ("" when unknown)."""

    name: str = ""
    brand: str = ""

    def __bool__(self) -> bool:
        return bool(self.name or self.brand)


def _plausible(run: str) -> bool:
    first = run.split()[0].lower().strip("'’")
    return first not in _NOT_NAMES and any(c.isalpha() for c in run)


def names_read(text: str, attributes: dict | None = None) -> ProductNames:
    """The product's name and brand: the ``attributes``' ``name``/``brand`` where ``text`` writes
    them; else read from the text's first "The X from/by Y" (X a run of capitalised words after
    "the", or two or more without) or "Y's X Z" (a brand's name of two or more words). A run
    that is no name ("Made from Italian leather", "Sourced by Hand") is not taken."""
    attributes = attributes or {}
    name = str(attributes.get("name") or "").strip()
    brand = str(attributes.get("brand") or "").strip()
    name = name if name and _written(text, name) else ""
    brand = brand if brand and _written(text, brand) else ""
    if name or brand:
        return ProductNames(name=name, brand=brand)
    for match in _NAME_FROM_BRAND.finditer(text):
        run = match.group("name")
        if (match.group("the") or len(run.split()) >= 2) and _plausible(run) and _plausible(match.group("brand")):
            return ProductNames(name=run, brand=match.group("brand"))
    for match in _BRAND_S_NAME.finditer(text):
        if _plausible(match.group("brand")) and _plausible(match.group("name")):
            return ProductNames(name=match.group("name"), brand=match.group("brand"))
    return ProductNames()


def _written(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None


def delexicalise(text: str, names: ProductNames) -> str:
    """``text`` with the product's name and brand as ``{name}`` and ``{brand}`` (the name first, a
    brand inside it stays part of it), and "the Isaura" of the Isaura Slingback Pump (the name's
    first word after "the", a short form) as "the {name}"."""
    out = text
    if names.name:
        out = re.sub(rf"(?<![\w-]){re.escape(names.name)}(?![\w-])", NAME_SLOT, out)
        first = names.name.split()[0]
        if len(names.name.split()) > 1 and first[:1].isupper() and first.lower() not in _NOT_NAMES and len(first) > 2:
            out = re.sub(rf"\b([Tt]he\s+){re.escape(first)}(?=\s+[a-z])", rf"\1{NAME_SLOT}", out)
    if names.brand:
        out = re.sub(rf"(?<![\w{{-]){re.escape(names.brand)}(?![\w}}-])", BRAND_SLOT, out)
    return out


# A name slot with no name to put back, with what goes with it, becomes "this product".
_NAMELESS = (
    re.compile(r"(?:\b[Tt]he\s+)?\{name\}\s+(?:from|by)\s+\{brand\}"),
    re.compile(r"\{brand\}['’]s\s+\{name\}"),
    re.compile(r"(?:\b[Tt]he\s+)?\{name\}"),
)
# A brand slot with no brand to put back is left out with its "from", "'s" or "the" ("The {brand}
# LED floodlight": "The LED floodlight"); as a sentence's subject ("{brand} shapes ...") it stays.
_BRANDLESS = (
    (re.compile(r"\s+(?:from|by)\s+\{brand\}"), ""),
    (re.compile(r"\{brand\}['’]s\s+"), ""),
    (re.compile(r"\b([Tt]he)\s+\{brand\}\s+"), r"\1 "),
)
# Slots in each other's roles: a name "from {name}", a brand "{brand} from ..." or "by the {brand}".
_MISUSED = re.compile(r"\b(?:from|by)\s+(?:the\s+)?\{name\}|\{brand\}\s+(?:from|by)\b|\b(?:from|by)\s+the\s+\{brand\}")


def relexicalise(text: str, names: ProductNames) -> str:
    """The slots of a decoded ``text`` filled with ``names``; a slot with no value reads "this
    product" (the name) or is left out with its "from"/"by" (the brand), so no name is made up. A
    text that uses the slots in each other's roles ("The {brand} from {name}") or a brand with no
    value as its subject is returned as it is, slots and all: not fit to show (``has_slots``)."""
    if _MISUSED.search(text):
        return text
    out = text
    if names.name:
        out = out.replace(NAME_SLOT, names.name)
    if names.brand:
        out = out.replace(BRAND_SLOT, names.brand)
    if not names.name:
        for pattern in _NAMELESS:
            out = pattern.sub("this product", out)
    if not names.brand:
        for pattern, replacement in _BRANDLESS:
            out = pattern.sub(replacement, out)
    return _sentence_case(out)


def _sentence_case(text: str) -> str:
    """A sentence that now opens with "this product" opens with a capital."""
    return re.sub(r"(^|[.!?]\s+)(this product)", lambda m: m.group(1) + "This product", text)


def has_slots(text: str) -> bool:
    return any(slot in text for slot in SLOTS)


def slot_words(words: list[str] | tuple[str, ...], names: ProductNames) -> list[str]:
    """``words`` (a variant's must-keep words) as the model writes them: a word of the name or
    the brand is its slot ("Linnet" of the Linnet Wrap Dress: ``{name}``), once."""
    out: list[str] = []
    for word in words:
        folded = word.strip().lower()
        if names.name and re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", names.name.lower()):
            word = NAME_SLOT
        elif names.brand and re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", names.brand.lower()):
            word = BRAND_SLOT
        if word not in out:
            out.append(word)
    return out
