"""Checks on decoded JSON before it reaches PostgreSQL: characters that ``text`` and ``jsonb``
cannot hold (NUL, unpaired UTF-16 surrogates), nesting depth and key count.

One walk, iterative (a document nested thousands of levels deep must not exhaust the stack),
used by the API's JSON parser for every request body and by ``job_params_validate`` for job
params from any caller.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Path = tuple[str | int, ...]


def text_problem(text: str) -> str | None:
    """Why PostgreSQL would refuse ``text``, or None."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Null characters are not allowed."
    return "Unpaired surrogate characters (\\ud800-\\udfff) are not allowed."


def printable(key: str) -> str:
    """A key as it can be named in an error body (NUL and surrogates escaped)."""
    return key.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def json_problem(value: Any, *, max_depth: int | None = None, max_keys: int | None = None) -> tuple[Path, str] | None:
    """The first problem in ``value`` as ``(path, message)``, or None.

    Depth counts containers: ``{"a": [1]}`` is 2 deep. Keys count every object key in the
    document. ``path`` names the offending value (or key) from the root."""
    keys = 0
    stack: list[tuple[Path, Any, int]] = [((), value, 1)]
    while stack:
        path, node, depth = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return path, problem
            continue
        if not isinstance(node, (dict, list, tuple)):
            continue
        if max_depth is not None and depth > max_depth:
            return path, f"Nested deeper than {max_depth} levels (GENAI_JSON_MAX_DEPTH)."
        if isinstance(node, dict):
            keys += len(node)
            if max_keys is not None and keys > max_keys:
                return (), f"More than {max_keys} keys in the document (GENAI_JSON_MAX_KEYS)."
            children = []
            for key, child in node.items():
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return (*path, printable(key)), f"Key: {problem}"
                children.append(((*path, printable(key) if isinstance(key, str) else key), child, depth + 1))
        else:
            children = [((*path, index), child, depth + 1) for index, child in enumerate(node)]
        stack.extend(reversed(children))  # depth first, in document order
    return None


def errors_at(path: Path, message: str) -> dict | list:
    """``{"a": {"b": {0: [message]}}}`` for path ``("a", "b", 0)``: DRF's shape of nested errors."""
    errors: dict | list = [message]
    for part in reversed(path):
        errors = {part: errors}
    return errors
