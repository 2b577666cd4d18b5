"""``{{Placeholder}}`` tokens: the loose spellings a model writes, masks turned back into
placeholders, values a model made up replaced by one, and filling them from context values."""

from __future__ import annotations

import re
from collections.abc import Sequence

from generation.text.masking import ORDER_LEAD_BEFORE

PLACEHOLDER = re.compile(r"\{\{\s*([^{}\n]{1,64}?)\s*\}\}")


# What a model writes for a placeholder: {{Name}}, {Name}}, {{ Name }, {{Name}}} ...
_LOOSE_PLACEHOLDER = re.compile(r"\{+\s*([A-Za-z][A-Za-z0-9 _\-/']{0,62}?)\s*\}+")
# Some answers write a placeholder in square brackets: "[Customer Support Phone Number]", "[Live Chat]".
_BRACKET_PLACEHOLDER = re.compile(r"\[((?:[A-Z][a-z]+ ){1,5}[A-Z][a-z]+)\]")


_MASK_NAMES = {
    "ORDER_ID": "Order Number",
    "EMAIL": "Email Address",
    "PHONE": "Phone Number",
    "CARD": "Card Number",
    "IBAN": "IBAN",
}


_MASK_TOKEN = re.compile(r"\[(" + "|".join(_MASK_NAMES) + r")\]")


# Values a model may make up: e-mails, URLs, and tokens with 3+ digits (order ids, phone
# numbers, amounts, dates are all caught by this; the ones the sources or the message hold stay).
_VALUE = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|https?://\S+|www\.[\w.-]+\S*"
    # a phone-like run: digits with spaces, brackets, dashes and dots inside one line; never across
    # a line end or a sentence's full stop ("order 00004587345.\n\n1. Log in" keeps its step 1)
    r"|(?<![\w{])(?:\+?\d(?:[\d ()-]|\.(?!\s)){5,}\d|[A-Za-z#$€£-]*\d[\w#-]*\d[\w#-]*\d[\w#-]*)(?![\w}])"
)


_VALUE_LABELS = (
    (re.compile(r"(order|purchase|tracking|invoice|ticket|reference|ref|case|confirmation)\b", re.I), None),
    (re.compile(r"(phone|call|number|line|contact)\b", re.I), "Customer Support Phone Number"),
)


def key_normalise(name: str) -> str:
    """A key or placeholder name compared loosely: case, spaces, "_" and "-" ignored."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


def placeholders_fill(text: str, context: dict[str, str]) -> str:
    """Fill ``{{Name}}`` tokens from ``context`` (names compared case- and separator-insensitively);
    unknown placeholders stay visible as ``{{Name}}``."""
    values = {key_normalise(k): v for k, v in context.items()}

    def fill(match: re.Match) -> str:
        name = match.group(1).strip()
        return values.get(key_normalise(name), "{{" + name + "}}")

    return PLACEHOLDER.sub(fill, text)


def placeholders_unfilled(text: str) -> list[str]:
    """The names of the ``{{Name}}`` tokens ``text`` still holds, each once, in order."""
    return list(dict.fromkeys(match.group(1).strip() for match in PLACEHOLDER.finditer(text)))


def placeholders_normalise(text: str) -> str:
    """Loose brace spellings and bracketed Title Case names ("[Live Chat]") to ``{{Name}}``;
    masked personal data (``[ORDER_ID]``) to a placeholder."""
    text = _LOOSE_PLACEHOLDER.sub(lambda m: "{{" + m.group(1).strip() + "}}", text)
    text = _BRACKET_PLACEHOLDER.sub(lambda m: "{{" + m.group(1) + "}}", text)

    def name(match: re.Match) -> str:
        kind = match.group(1)
        if kind in ("PHONE", "CARD") and ORDER_LEAD_BEFORE.search(text[max(0, match.start() - 40) : match.start()]):
            kind = "ORDER_ID"  # masking reads a long order number after "order number" as a phone
        return "{{" + _MASK_NAMES[kind] + "}}"

    return _MASK_TOKEN.sub(name, text)


_FIGURE = re.compile(r"(?<![\w.,+])\d+(?:[.,]\d+)*(?![\w])")


# A list's step number: "1." or "2)" first in the text, on a line or after a clause.
_STEP = re.compile(r"(?:^|(?<=\n)|(?<=[:;,.!?] ))\s*(\d{1,2})[.)](?=\s)")


def _figures(text: str) -> tuple[list[tuple[str, bool]], bool]:
    """(each figure of ``text`` with whether it numbers a list step, whether any does)."""
    steps = {m.start(1) for m in _STEP.finditer(text)}
    return [(m.group(0), m.start() in steps) for m in _FIGURE.finditer(text)], bool(steps)


def figures_unbacked(text: str, known: Sequence[str]) -> list[str]:
    """The figures of ``text`` (1- and 2-digit numbers too: "a 10-year warranty", "within 5
    days", "20%") that none of the ``known`` texts holds as a number, in text order. A list's
    step numbers ("1.") back no figure ("within 1 week" where a source says 30 days in its
    step "1.") and count only where nothing known numbers its steps either."""
    have: set[str] = set()
    known_steps = False
    for source in known:
        figures, has_steps = _figures(source or "")
        have |= {figure for figure, step in figures if not step}
        known_steps |= has_steps
    figures, _ = _figures(text)
    return [figure for figure, step in figures if figure not in have and not (step and known_steps)]


# Words that refuse, deny or restrict ("there is no refund available for Klarna", "unfortunately,
# the website doesn't allow you", "at present, we only accept PayPal and Apple Pay"): an opening the
# model wrote must not turn down what no source does.
_REFUSAL = re.compile(
    r"\b(?:unfortunately|unable to|not able to|cannot|can't|can not|won't be able|no longer|must inform you|"
    r"(?:is|are) not (?:available|possible|eligible|allowed|supported)|there (?:is|are) no|doesn't allow|does not allow|"
    r"(?:we|you) (?:can )?only (?:accept|offer|ship|sell|deliver|take|support|use))\b",
    re.IGNORECASE,
)


def refusals_unbacked(text: str, known: Sequence[str]) -> list[str]:
    """The refusing or denying phrases of ``text`` ("unfortunately", "there is no", "cannot",
    ...) that none of the ``known`` texts uses, lower-cased, in text order."""
    have = {m.group(0).lower() for t in known for m in _REFUSAL.finditer(t or "")}
    return [m.group(0).lower() for m in _REFUSAL.finditer(text) if m.group(0).lower() not in have]


def invented_values_replace(text: str, known: Sequence[str]) -> tuple[str, list[str]]:
    """Replace the values in ``text`` (numbers, ids, e-mails, URLs, phones) that none of the
    ``known`` texts contains with a placeholder; returns the text and the values replaced."""
    haystack = "\n".join(known).lower()
    compact = re.sub(r"[\s().-]", "", haystack)
    replaced: list[str] = []

    def check(match: re.Match) -> str:
        value = match.group(0).rstrip(".,;:")
        tail = match.group(0)[len(value):]
        if value.lower() in haystack or re.sub(r"[\s().-]", "", value.lower()) in compact:
            return match.group(0)
        replaced.append(value)
        before = text[max(0, match.start() - 40) : match.start()]
        if "@" in value:
            name = "Email Address"
        elif value.lower().startswith(("http", "www.")):
            name = "Website URL"
        else:
            name = "Value"
            for pattern, label in _VALUE_LABELS:
                found = list(pattern.finditer(before))
                if found:
                    name = label or f"{found[-1].group(1).title()} Number"
                    break
        return "{{" + name + "}}" + tail

    return _VALUE.sub(check, text), replaced
