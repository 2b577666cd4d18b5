"""Sentences: one definition of where a sentence ends, used by every splitter.

A sentence ends at ``.``, ``!`` or ``?`` (with any closing quotes or brackets) followed by white
space or the end of the text, and at a line break. A number at a line's start ("3. Open the app")
is a list step, not the end of a sentence.
"""

from __future__ import annotations

import re

_NOT_STEP = r"(?<!^\d)(?<!\n\d)(?<!^\d\d)(?<!\n\d\d)"  # "3." at a line's start ends no sentence
SENTENCE_END = re.compile(_NOT_STEP + r"[.!?](?:[\"')\]]*)(?=\s|$)|\n")
# With ``capitalised``: only where the next sentence starts like one (a capital, a quote, a
# bracket or a placeholder), so "U.S. stocks" or "approx. 5" stay one sentence.
_NEXT_STARTS = re.compile(r"\s*[A-Z\[\"'({]")


def sentence_ends(text: str, *, start: int = 0, end: int | None = None, capitalised: bool = False) -> list[int]:
    """Offsets just past each sentence end in ``text[start:end]``."""
    ends = []
    for match in SENTENCE_END.finditer(text, start, len(text) if end is None else end):
        if capitalised and match.group(0) != "\n" and not _NEXT_STARTS.match(text, match.end()):
            continue
        ends.append(match.end())
    return ends


def sentences_split(text: str, *, capitalised: bool = False) -> list[str]:
    """The sentences of ``text``, stripped, empty ones dropped."""
    pieces, last = [], 0
    for end in sentence_ends(text, capitalised=capitalised):
        pieces.append(text[last:end])
        last = end
    pieces.append(text[last:])
    return [p.strip() for p in pieces if p.strip()]


def line_ends_normalise(text: str) -> str:
    """One line-ending style: Windows (``\\r\\n``) and old Mac (``\\r``) line ends become ``\\n``
    (the Bitext CSV's answers use ``\\r\\n``; a model writes ``\\n``; a reply joined from both
    showed both)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


_LIST_ITEM = r"(?:\d+[.)]|[-*\u2022])\s"
_LIST_THEN_TEXT = re.compile(rf"^({_LIST_ITEM}[^\n]*)\n(?!\n|\s*{_LIST_ITEM})(?=\S)", re.MULTILINE)
# A list's item at the start of a line after the first ("...causes it:\n1. ...").
LIST_START = re.compile(rf"\n[ \t]*{_LIST_ITEM}")


def list_end_paragraph(text: str) -> str:
    """A line of text right after a list's last item starts a paragraph of its own (a blank line
    before it): "5. Follow the prompts.\nIf you need help ..." read as part of step 5."""
    return _LIST_THEN_TEXT.sub(r"\1\n\n", text)


def unfinished_cut(text: str) -> str:
    """Drop an unfinished last sentence (a candidate stopped by max_new_tokens or cut in a loop)."""
    stripped = text.rstrip()
    if re.search(r"[.!?:][\"')\]]*$|\}\}$", stripped):
        return stripped
    ends = sentence_ends(stripped)
    return stripped[: ends[-1]].rstrip() if ends else stripped
