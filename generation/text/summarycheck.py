"""Is each sentence of a news summary supported by the items it cites?

An alert's summary cites the news items behind it as ``[#12]``. A sentence is supported when the
items it cites carry what it says:

- it cites at least one item, and only items it was given;
- the entity: with an alert about one entity, every cited item is about it (tagged with it, or
  naming its key, ``$KEY``, name or an alias), and the entity's names need no other support;
- the direction of sentiment: a sentence that says things went down (fell, cut, downgrade, loss,
  probe ...) cites an item scored negative or worded so itself; one that says they went up (rose,
  beat, upgrade, record ...) a positive one;
- every number (``5%``, ``1,200``, ``3.5``, ``2019``) appears in a cited item;
- every name (a capitalised word after the first, an acronym, a ``$CASHTAG``; the first word too
  unless it is a common word) appears in a cited item.

The check reads words, not meaning: it does not see negation ("did not fall" reads as down) and
takes number words ("three") for words. It is strict on purpose: a summary it rejects is replaced
by the extractive one, which quotes the items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from generation.text.sentences import sentences_split

CITATION = re.compile(r"\[#(\d+)\]")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[#\d+\])+")
_NUMBER = re.compile(r"(?<![\w.#])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d])")
_TOKEN = re.compile(r"(?<![\w$])\$?[A-Za-z][A-Za-z0-9&'’.-]*")  # not a unit glued to a number ("$50B")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

NEGATIVE_WORDS = frozenset(
    """fall falls fell falling fallen drop drops dropped dropping decline declines declined declining slump slumps
    slumped plunge plunges plunged plunging tumble tumbles tumbled sink sinks sank sunk slide slides slid sliding
    slip slips slipped cut cuts cutting slash slashes slashed downgrade downgrades downgraded loss losses lose loses
    losing lost miss misses missed weak weaker weakness weakening warn warns warned warning concern concerns worry
    worries worried fear fears feared lawsuit lawsuits sue sued probe probes investigation fine fined fines crash
    crashes crashed lower lowered lowers negative bearish selloff sell-off layoffs layoff halt halts halted grounded
    grounding recall recalls recalled delay delays delayed risk risks pressure pressured struggle struggles struggling
    disappoint disappoints disappointing disappointed bankruptcy default defaults slowdown recession shortfall
    underperform underperforms downturn plummet plummets plummeted sinking tank tanks tanked""".split()
)
POSITIVE_WORDS = frozenset(
    """rise rises rose risen rising gain gains gained gaining jump jumps jumped surge surges surged surging soar soars
    soared soaring rally rallies rallied climb climbs climbed beat beats upgrade upgrades upgraded record strong
    stronger strength growth grow grows grew boost boosts boosted positive bullish outperform outperforms outperformed
    raise raises raised higher profit profits profitable recover recovers recovered recovery rebound rebounds
    rebounded win wins won approval approved""".split()
)
# Capitalised only because they start a sentence: no name to look for.
COMMON_STARTS = frozenset(
    """a an the this that these those it its they their there here he she we our his her some several many most
    more less few all both each every no none one other another such overall also additionally meanwhile however
    moreover furthermore further still yet but and or so then thus therefore because as after before while when
    since although though despite amid in on at by for from with without of to over under into about against
    between during among across investors analysts traders shares stock stocks sentiment news reports report
    reported items item concerns fears worries sales revenue earnings profit profits demand prices price markets
    market trading investors' negative positive mixed weak strong lower higher a.m p.m if whether what why how
    which who where recent recently today yesterday earlier later separately elsewhere similarly likewise notably
    only even just first second third finally lastly""".split()
)
_NOT_NAMES = frozenset({"I", "OK"})


@dataclass(frozen=True)
class Source:
    """One news item a summary may cite: its text, its sentiment label and the entities it is
    tagged with."""

    text: str
    label: str = ""
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class SentenceCheck:
    sentence: str
    cited: tuple[int, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def supported(self) -> bool:
        return not self.problems


def summary_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The summary's sentences with the ids each cites. A citation after a full stop ("Shares
    fell. [#3] Orders ...") belongs to the sentence before it when that one cites nothing else or
    the next one has its own citation; otherwise it leads the next sentence ("[#3] Orders fell.")."""
    pieces: list[str] = []
    for sentence in sentences_split(" ".join(text.split()), capitalised=True):
        leading = _LEADING_CITATIONS.match(sentence)
        if leading and pieces:
            rest = sentence[leading.end():].strip()
            if not CITATION.search(pieces[-1]) or CITATION.search(rest):
                pieces[-1] += " " + leading.group(0).strip()
                sentence = rest
        if sentence:
            pieces.append(sentence)
    return [(p, tuple(dict.fromkeys(int(n) for n in CITATION.findall(p)))) for p in pieces]


def _numbers(text: str) -> set[str]:
    found = set()
    for raw in _NUMBER.findall(CITATION.sub(" ", text)):
        try:
            found.add(str(float(raw.replace(",", ""))))
        except ValueError:  # pragma: no cover - the pattern only matches numbers
            continue
    return found


def _fold(text: str) -> str:
    """Lower case, dots out of acronyms (U.S. -> us), curly apostrophes straight."""
    text = text.replace("’", "'")
    text = re.sub(r"\b([A-Za-z](?:\.[A-Za-z])+)\.?(?!\w)", lambda m: m.group(1).replace(".", ""), text)
    return text.lower()


def _words(text: str) -> set[str]:
    """The words of ``text``, folded, each also without a possessive ("biogen's" -> "biogen")."""
    words = set(_WORD.findall(_fold(text)))
    return words | {w.removesuffix("'s") for w in words}


def _direction(sentence: str) -> str:
    words = _WORD.findall(_fold(CITATION.sub(" ", sentence)))
    down = sum(w in NEGATIVE_WORDS for w in words)
    up = sum(w in POSITIVE_WORDS for w in words)
    return "negative" if down > up else "positive" if up > down else ""


def _names(sentence: str, *, skip_phrases: Sequence[str]) -> list[str]:
    """The names a sentence states: capitalised words after the first, acronyms, cashtags, and
    the first word unless it is a common one. ``skip_phrases`` (the entity's names) are left out."""
    text = CITATION.sub(" ", sentence)
    for phrase in sorted(skip_phrases, key=len, reverse=True):
        if phrase:
            text = re.sub(rf"(?<![\w$&])\$?{re.escape(phrase)}(?:'s)?(?![\w&])", " ", text, flags=re.IGNORECASE)
    names = []
    for index, match in enumerate(_TOKEN.finditer(text)):
        token = match.group(0).rstrip("'’-").removesuffix("'s").removesuffix("’s")
        if token.startswith("$"):
            names.append(token.rstrip("."))
            continue
        for part in token.split("-"):
            part = part.replace(".", "") if re.fullmatch(r"(?:[A-Z]\.)+[A-Z]?\.?", part) else part.rstrip(".")
            if not part or not part[0].isupper() or part in _NOT_NAMES:
                continue
            if index == 0 and not part.isupper() and part.lower() in COMMON_STARTS:
                continue
            names.append(part)
    return names


def _mentions(text_words: set[str], folded_text: str, name: str) -> bool:
    name = _fold(name.lstrip("$"))
    if any(c in name for c in " .&-"):
        return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", folded_text) is not None
    return name in text_words


def sentence_support(
    sentence: str, cited: Sequence[int], *, sources: Mapping[int, Source], entity: str = "", entity_terms: Sequence[str] = ()
) -> SentenceCheck:
    """The problems of one sentence against the sources it cites (none: supported)."""
    problems: list[str] = []
    if not cited:
        problems.append("cites no item")
    unknown = [i for i in cited if i not in sources]
    if unknown:
        problems.append("cites " + ", ".join(f"#{i}" for i in unknown) + ", not behind the alert")
    given = [(i, sources[i]) for i in cited if i in sources]
    if not given:
        return SentenceCheck(sentence, tuple(cited), tuple(problems))
    refs = ", ".join(f"#{i}" for i, _ in given)
    folded = {i: _fold(s.text) for i, s in given}
    words = {i: _words(s.text) for i, s in given}
    terms = [t for t in dict.fromkeys([entity, *entity_terms]) if t and t != "*"]
    if terms:
        for i, source in given:
            if entity not in source.entities and not any(_mentions(words[i], folded[i], t) for t in terms):
                problems.append(f"#{i} is not about {entity}")
    direction = _direction(sentence)
    if direction and not any(s.label == direction or _direction(s.text) == direction for _, s in given):
        problems.append(f"says sentiment is {direction}; none of {refs} is {direction} or says so")
    in_sources = set().union(*(_numbers(s.text) for _, s in given))
    for number in sorted(_numbers(sentence) - in_sources):
        problems.append(f"the number {number.removesuffix('.0')} is in none of {refs}")
    for name in dict.fromkeys(_names(sentence, skip_phrases=terms)):
        if not any(_mentions(words[i], folded[i], name) for i, _ in given):
            problems.append(f"the name {name} is in none of {refs}")
    return SentenceCheck(sentence, tuple(cited), tuple(problems))


def summary_support(
    text: str, *, sources: Mapping[int, Source], entity: str = "", entity_terms: Sequence[str] = ()
) -> list[SentenceCheck]:
    """Each sentence of ``text`` checked against the sources it cites."""
    return [
        sentence_support(sentence, cited, sources=sources, entity=entity, entity_terms=entity_terms)
        for sentence, cited in summary_sentences(text)
    ]


def support_problem(checks: Sequence[SentenceCheck]) -> str:
    """A one-line reason naming the first unsupported sentence, or '' when all are supported."""
    for number, check in enumerate(checks, start=1):
        if check.problems:
            return f"sentence {number} is unsupported: {'; '.join(check.problems)}"
    return ""
