"""The patterns personal data is recognised by: e-mail addresses, IBANs, order ids, payment cards,
phone numbers, and the spans never masked (dates, times, prices, IPs, year ranges). One place:
``generation.privacy.pii_mask`` applies them; the reply post-processing and the output safety
filter use the same order vocabulary to tell an order number from a phone number.
"""

from __future__ import annotations

import re

EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])"
)

_CURRENCY = r"[$€£¥₹]|(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|INR|dollars?|euros?|pounds?|bucks)\b"

_AMOUNT = r"\d{1,3}(?:[,.\u00a0 ]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"

PROTECTED = [
    # ISO dates and date-times' date part: 2024-01-15, 2024/1/5, 2024.01.15
    re.compile(r"(?<![\d.,/-])\d{4}([-/.])\d{1,2}\1\d{1,2}(?![\d]|[-/.]\d)"),
    # day-month-year or month-day-year: 15/01/2024, 01.02.24, 12-31-2023
    re.compile(r"(?<![\d.,/-])\d{1,2}([-/.])\d{1,2}\1(?:\d{4}|\d{2})(?![\d]|[-/.]\d)"),
    # times: 10:30, 23:59:59
    re.compile(r"(?<![\d:])\d{1,2}:\d{2}(?::\d{2})?(?![\d:])"),
    # prices: $1,234.56, € 12,50, 1.234,56 EUR, 99 dollars
    re.compile(rf"(?:{_CURRENCY})\s?(?:{_AMOUNT})(?![\d])", re.IGNORECASE),
    re.compile(rf"(?<![\d.,])(?:{_AMOUNT})\s?(?:{_CURRENCY})", re.IGNORECASE),
    # IPv4 addresses and dotted version numbers with four parts
    re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"),
    # year ranges: 2019-2020, 1990 – 95
    re.compile(r"(?<!\d)(?:19|20)\d{2}\s?[-–]\s?(?:(?:19|20)\d{2}|\d{2})(?![\d-])"),
]

IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")

ORDER_WORDS = (
    r"orders?|purchases?|invoices?|bills?|receipts?|tracking|shipments?|parcels?|packages?|"
    r"deliver(?:y|ies)|bookings?|reservations?|confirmations?|transactions?|references?|ref|"
    r"tickets?|rma|returns?|refunds?"
)

ORDER_CONTEXT = re.compile(
    rf"\b(?:{ORDER_WORDS})(?:\b|(?=\d))"
    r"(?:[\s:=]+(?:with|the|your|my|number|no|nr|num|id|code|is|was|of)\b\.?){0,4}[\s:={]*"
    r"(?P<id>#?\s?[A-Za-z0-9]{1,40}(?:-[A-Za-z0-9]{1,40}){0,5})(?![\w-])",
    re.IGNORECASE,
)

ORDER_HASH = re.compile(r"(?<![\w&#])#\s?\d{4,}(?![\w-])")

ORDER_PREFIXED = re.compile(
    r"(?<![\w-])(?:ORD|ORDER|INV|PO|SO|TRK|RMA|REF|TKT|BKG|CS)[-_#]?\d{4,}(?:-\d+)*(?![\w-])", re.IGNORECASE
)


# Cards as printed (4-4-4-4[-3], 4-4-4-1..4, Amex 4-6-5) or as one run of 13 to 19 digits; a
# leading 0 is no card network's (and is how international phone prefixes start).
CARD = re.compile(
    r"(?<![\w+-])(?:[1-9]\d{3}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{3})?|[1-9]\d{3}([ -])\d{6}\2\d{4,5}"
    r"|[1-9]\d{12,18})(?![\w]|[-.,]\d)"
)

PHONE = re.compile(
    r"(?<![\w+\-.,/])(?<!\d[ .\-])(?:(?:\+|00)\s?)?(?:\(\d{1,5}\)|\d)(?:[ .\-]?(?:\(\d{1,5}\)|\d)){6,}(?![\w]|[-.,/]\d)"
)

PHONE_CONTEXT = re.compile(
    r"(?:phone|tel(?:ephone)?|mobile|cell(?:phone)?|call|ring|text|sms|whats\s?app|fax|contact|number|reach)"
    r"\b[^\n\d]{0,25}$",
    re.IGNORECASE,
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


# Words that make the number after them a phone number even after an order word ("about my order,
# call me on 0612..."); "number" alone is no such word ("order number 0612...").
PHONE_WORDS = r"phone|tel|telephone|mobile|cell|cellphone|call|ring|sms|whats\s?app|fax|reach"

# What comes right before a number that is an order's id ("your order number is 7734...", "the
# order labeled with the number 1135...", "order no. 415 555 0100"): a long run of digits there is
# an order id, whatever it looks like (a phone, a card), unless a phone word comes between.
ORDER_LEAD_BEFORE = re.compile(
    rf"\b(?:{ORDER_WORDS})\b(?:(?!\b(?:{PHONE_WORDS})\b)(?:[^.,;!?\n\d]|(?<=\bno)\.|(?<=\bnr)\.|(?<=\bnum)\.)){{0,40}}$",
    re.IGNORECASE,
)
# A run of 6 or more digits, alone or in groups (spaces, dots, dashes), that is not international
# (+...): what an order number looks like when it is also shaped like a phone or card number.
# ``generation.privacy`` types it as an order id when ORDER_LEAD_BEFORE matches the text before it.
ORDER_DIGITS = re.compile(r"(?<![\w+\-.,/#])(?<!#\s)(?<!\d[ .\-])\d(?:[ .\-]?\d){5,}(?![\w]|[-.,/]\d)")
# An order word followed by a number (the lead kept in group "lead").
ORDER_NUMBER = re.compile(rf"(?P<lead>\b(?:{ORDER_WORDS})\b[^\n\d]{{0,40}}?)#?\d[\d-]{{3,}}\d\b", re.IGNORECASE)
