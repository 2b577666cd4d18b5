"""Indefinite articles: "a" or "an" by the sound of the next word, none before a plural item.

A small model lists a product's features with an article each and gets them wrong: "It has a
leather handles", "an height-adjustable stand", "a silent clicks". ``articles_fix`` corrects "a"/"an"
before any word by its first sound, and drops the article before an attribute item that is a
plural ("leather handles"). Nothing else in the text changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Upper-case letters whose name starts with a vowel sound: "an LED", "an SD card", "an HDMI port".
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")
# Words starting with a vowel letter and a consonant sound, and the reverse.
_CONSONANT_SOUND = re.compile(r"^(?:uni|use|usa|usu|ut[ei]|ura|ure|uro|euro|eu|ewe|one\b|once|onesie)", re.I)
_VOWEL_SOUND = re.compile(r"^(?:hour|honest|honou?r|heir)", re.I)
_ARTICLE = re.compile(r"(?<![\w'’-])(a|an|A|An)(\s+)([\"'“‘(]?)([\w][\w'’.-]*)")


def article_for(word: str) -> str:
    """``"a"`` or ``"an"`` for the word that follows it."""
    word = word.strip("\"'“‘(")
    if not word:
        return "a"
    head = re.split(r"[-’']", word)[0] or word
    if head[0].isdigit():
        digits = re.match(r"\d+", head).group(0)
        return "an" if digits.startswith("8") or digits in ("11", "18") or (
            len(digits) in (5, 6) and digits[:2] in ("11", "18") and len(digits) % 3 == 2) else "a"
    letters = re.sub(r"[^A-Za-z]", "", head)
    if len(letters) >= 2 and letters.isupper():  # an acronym, said letter by letter
        return "an" if letters[0] in _VOWEL_SOUND_LETTERS else "a"
    if _VOWEL_SOUND.match(word):
        return "an"
    if _CONSONANT_SOUND.match(word):
        return "a"
    return "an" if word[0].lower() in "aeiou" else "a"


def _plural(item: str) -> bool:
    last = item.split()[-1].lower() if item.split() else ""
    return (len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is", "ics"))
            and not re.search(r"\d", item))


# Plurals sold as one thing: "a pair of jeans", never "a jeans".
PAIR_NOUNS = frozenset(
    "jeans trousers pants shorts chinos leggings joggers tights socks gloves mittens boots shoes sneakers trainers "
    "sandals slippers loafers heels flats clogs earbuds earphones headphones glasses sunglasses goggles "
    "scissors pliers tongs binoculars pyjamas".split()
)


def articles_fix(text: str, items: Iterable[str] = ()) -> str:
    """``text`` with each "a"/"an" matching the next word's sound and none before a plural of
    ``items`` (the attribute values, as written); "a pair of" before a plural sold as one
    ("a jeans", "an indigo jeans")."""
    for item in items:
        if not _plural(item):
            continue
        pattern = r"(?<![\w'’-])(?:a|an)\s+((?:[\w-]+\s+){0,2}?" + re.escape(item) + r")(?![\w'’-])"
        if item.split()[-1].lower() in PAIR_NOUNS:
            text = re.sub(pattern, lambda m: m.group(0) if re.match(r"pairs?\b|\S+\s+of\b", m.group(1), re.I)
                          else f"a pair of {m.group(1)}", text, flags=re.I)
        else:
            text = re.sub(r"(?<![\w'’-])(?:a|an)\s+(" + re.escape(item) + r")(?![\w'’-])", r"\1", text, flags=re.I)

    def fix(match: re.Match) -> str:
        article, space, quote, word = match.groups()
        start = match.start()
        sentence_start = start == 0 or re.search(r"[.!?:;]\s*[\"'“‘(]?$", text[:start]) is not None
        if article[0].isupper() and not sentence_start:
            return match.group(0)  # "Vitamin A", "Grade A": not an article
        wanted = article_for(word)
        if article[0].isupper():
            wanted = wanted.capitalize()
        return f"{wanted}{space}{quote}{word}"

    return _ARTICLE.sub(fix, text)
