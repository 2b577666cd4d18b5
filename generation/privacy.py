"""Personal-data masking: e-mail addresses, phone numbers, payment card numbers, IBANs and order
ids in free text are replaced by typed placeholders (``[EMAIL]``, ``[PHONE]``, ``[CARD]``,
``[IBAN]``, ``[ORDER_ID]``) before the text is stored or put in a prompt.

``pii_mask(text)`` is the entry point. It is deterministic and idempotent (masked text masks to
itself), and errs on the side of masking a long digit sequence that looks like a phone number,
while leaving alone what customer messages are full of: dates, times, prices, quantities, years
and version numbers.

How it decides, in this order (an earlier claim wins over a later, overlapping one):

1. e-mail addresses;
2. *protected* spans, never masked and never part of another match: dates (2024-01-15,
   15/01/2024, 01.02.2024), times (10:30), prices ($1,234.56, 12,50 EUR), IPv4 addresses and
   year ranges (2019-2020);
3. IBANs (mod-97 checked);
4. order ids: a code after a word like *order*, *purchase*, *invoice*, *tracking* or *ref*
   ("order 370795561790", "invoice #00108"), ``#123456``, and prefixed codes such as
   ``ORD-12345``; a run of digits shaped like a phone or card number is an order id too when an
   order word leads to it with no phone word between ("the order number 7322 0134 9959", "the
   order labeled with the number 1135...", but "my order has not come, call me on 0612...");
5. payment cards: 13 to 19 digits, optionally grouped by spaces or dashes, Luhn checked;
6. phone numbers: 7 to 15 digits (E.164) in phone-like groups, or a plain run of digits that is
   a number in international (+...) or national (0...) form, a 10-digit North American number,
   or any 7 to 15 digits right after a word like *phone*, *call* or *mobile*.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from generation.text import masking

__all__ = ["PiiKind", "MaskResult", "pii_mask"]


class PiiKind(StrEnum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CARD = "CARD"
    IBAN = "IBAN"
    ORDER_ID = "ORDER_ID"

    @property
    def placeholder(self) -> str:
        return f"[{self.value}]"


class MaskResult(NamedTuple):
    """``text`` with personal data replaced; ``found`` lists what was masked, in text order
    (one entry per occurrence)."""

    text: str
    found: list[PiiKind]


# The detectors (regular expressions and checksums) live in generation.text.masking.


def _is_phone(text: str, start: int, candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15:
        return False
    if re.search(r"[.\-]{2}| {2}|[.\-] | [.\-]", candidate):
        return False
    international = candidate.startswith(("+", "00"))
    context = bool(masking.PHONE_CONTEXT.search(text[max(0, start - 40) : start]))
    groups = [g for g in re.split(r"[^\d]+", candidate) if g]
    if len(groups) == 1:  # one run of digits, no separators
        if international or context:
            return True
        if digits.startswith("0"):
            return 9 <= len(digits) <= 12
        return len(digits) == 10 and digits[0] in "23456789"
    if international or context:
        return True
    separators = set(re.findall(r"[^\d()]", candidate.replace(" (", "(").replace(") ", ")")))
    # 1 234 567 / 1.234.567: a number with thousands separators, not a phone
    if (
        len(separators) == 1
        and not candidate.startswith(("0", "("))
        and len(groups[0]) <= 3
        and all(len(g) == 3 for g in groups[1:])
    ):
        return False
    if len(groups) == 2 and not candidate.startswith(("0", "(")):
        # 555-1234 is a local number; 12345-6789 (ZIP+4) or 1000-2000 (a range) is not
        return (len(groups[0]), len(groups[1])) == (3, 4)
    return True


def _after_order_word(text: str, start: int) -> bool:
    """Whether the number at ``start`` follows an order word ("order", "invoice", "ref" ...) with
    no phone word between ("order number 415...", not "my order, call me on 415...")."""
    return bool(masking.ORDER_LEAD_BEFORE.search(text[max(0, start - 60) : start]))


# --- masking --------------------------------------------------------------------------------


def pii_mask(text: str) -> MaskResult:
    """Replace personal data in ``text`` with typed placeholders.

    >>> pii_mask("Mail jane.doe@example.com or call +1 (555) 123-4567 about order ORD-12345.")
    MaskResult(text='Mail [EMAIL] or call [PHONE] about order [ORDER_ID].', found=[...])

    Dates, times, prices and other numbers are left as they are; see the module docstring for
    the rules.
    """
    if not text:
        return MaskResult(text, [])
    claimed: list[tuple[int, int, PiiKind | None]] = []  # None: protected, kept as is

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in claimed)

    def claim(start: int, end: int, kind: PiiKind | None) -> None:
        if free(start, end):
            claimed.append((start, end, kind))

    for match in masking.EMAIL.finditer(text):
        claim(match.start(), match.end(), PiiKind.EMAIL)
    for pattern in masking.PROTECTED:
        for match in pattern.finditer(text):
            claim(match.start(), match.end(), None)
    # Later detectors see claimed spans as opaque, so a phone number next to a date is matched
    # on its own rather than not at all.
    # A card pattern rejected by Luhn may hide a real card starting inside it (a phone number
    # printed right before it); phone candidates are whole runs of digit groups instead.
    for pattern, kind, check, retry_inside in (
        (masking.IBAN, PiiKind.IBAN, lambda m: masking.iban_ok(m.group()), False),
        # Before cards and phones: "the order number 7322 0134 9959" is an order id, not a phone.
        (masking.ORDER_DIGITS, PiiKind.ORDER_ID, lambda m: _after_order_word(text, m.start()), False),
        # A failed try ("purchase with the order number 7322...": "order" is not an id) resumes
        # inside it, so the order word it passed over still leads its own match.
        (masking.ORDER_CONTEXT, PiiKind.ORDER_ID, lambda m: sum(c.isdigit() for c in m.group("id")) >= 4, True),
        (masking.ORDER_HASH, PiiKind.ORDER_ID, None, False),
        (masking.ORDER_PREFIXED, PiiKind.ORDER_ID, None, False),
        (masking.CARD, PiiKind.CARD, lambda m: masking.luhn_ok(re.sub(r"\D", "", m.group())), True),
        (masking.PHONE, PiiKind.PHONE, lambda m: _is_phone(text, m.start(), m.group()), False),
    ):
        opaque = _blank(text, claimed)
        group = "id" if "id" in pattern.groupindex else 0
        position = 0
        while (match := pattern.search(opaque, position)) is not None:
            if check is None or check(match):
                claim(*match.span(group), kind)
                position = match.end()
            else:
                position = match.start() + 1 if retry_inside else match.end()

    masked = [(s, e, k) for s, e, k in sorted(claimed) if k is not None]
    if not masked:
        return MaskResult(text, [])
    parts, cursor = [], 0
    for start, end, kind in masked:
        parts.append(text[cursor:start])
        parts.append(kind.placeholder)
        cursor = end
    parts.append(text[cursor:])
    return MaskResult("".join(parts), [k for _, _, k in masked])


def _blank(text: str, claimed: list[tuple[int, int, PiiKind | None]]) -> str:
    """``text`` with claimed spans replaced by a character no pattern matches (same length)."""
    if not claimed:
        return text
    chars = list(text)
    for start, end, _ in claimed:
        chars[start:end] = "\u2400" * (end - start)
    return "".join(chars)


# --- job params -----------------------------------------------------------------------------

# The free text people write into each job kind's params, masked once in ``job_params_validate``
# before the params are stored (``generation_job.params``): the runner then works on masked text,
# as replies always have (placeholders such as ``[ORDER_ID]`` stay visible in drafts).
# Paths: ``a`` a string; ``a[]`` each item of a list; ``a[].b`` a field of each item; ``a{}``
# every value of an object (text or lists of text). Kinds not named hold no free text (ids,
# model names, file paths, numbers).
def params_mask(params: dict, *, paths: tuple[str, ...]) -> dict:
    """A copy of a job's validated ``params`` with personal data masked in the free text at
    ``paths`` (the kind's ``masked_params``)."""
    if not paths:
        return params
    import copy

    masked = copy.deepcopy(params)
    for path in paths:
        _mask_at(masked, path.split("."))
    return masked


def _mask_value(value):
    if isinstance(value, str):
        return pii_mask(value).text
    if isinstance(value, list):
        return [_mask_value(item) for item in value]
    return value


def _mask_at(node, parts: list[str]) -> None:
    if not isinstance(node, dict):
        return
    part, rest = parts[0], parts[1:]
    if part.endswith("[]"):
        items = node.get(part[:-2])
        if isinstance(items, list):
            for index, item in enumerate(items):
                if rest:
                    _mask_at(item, rest)
                else:
                    items[index] = _mask_value(item)
    elif part.endswith("{}"):
        values = node.get(part[:-2])
        if isinstance(values, dict):
            for key, value in values.items():
                values[key] = _mask_value(value)
    elif rest:
        _mask_at(node.get(part), rest)
    elif part in node:
        node[part] = _mask_value(node[part])
