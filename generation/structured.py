"""Structured output: OpenAI's ``response_format`` turned into a grammar for constrained decoding.

The grammar is llguidance's (the library vLLM, SGLang and llama.cpp use): a JSON schema compiles
to a grammar string that the worker's decoder turns into a token mask at every step
(``workers.ml.grammar``), so every token keeps the output a prefix of a document the schema
accepts. The web checks the schema here first, so a bad one is a 400 naming ``response_format``
instead of a failed job.

JSON is generated compact (no whitespace between tokens): a small model given free whitespace can
spend its whole token budget on newlines.
"""

from __future__ import annotations

import json

import llguidance

# ``{"type": "json_object"}``: any JSON object, as OpenAI's JSON mode.
ANY_OBJECT_SCHEMA = {"type": "object"}
_COMPILE_OPTIONS = {"whitespace_flexible": False}


class ResponseFormatError(ValueError):
    """The ``response_format`` cannot be used; the message says why (and where)."""


def response_format_schema(response_format: dict | None) -> dict | None:
    """The JSON schema a ``response_format`` asks for (None: free text). Checks its shape."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise ResponseFormatError('Expected an object such as {"type": "json_object"}.')
    kind = response_format.get("type")
    extra = set(response_format) - {"type", "json_schema"}
    if extra:
        raise ResponseFormatError(f"Unknown key(s): {', '.join(sorted(extra))}.")
    if kind == "text":
        return None
    if kind == "json_object":
        return ANY_OBJECT_SCHEMA
    if kind != "json_schema":
        raise ResponseFormatError(f"type must be text, json_object or json_schema, not {json.dumps(kind)}.")
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise ResponseFormatError('json_schema: expected an object {"name": ..., "schema": {...}}.')
    unknown = set(spec) - {"name", "description", "schema", "strict"}
    if unknown:
        raise ResponseFormatError(f"json_schema: unknown key(s): {', '.join(sorted(unknown))}.")
    name = spec.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ResponseFormatError("json_schema.name: a string of 1 to 64 characters is required.")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise ResponseFormatError("json_schema.schema: expected a JSON Schema object.")
    return schema


def response_format_grammar(response_format: dict | None) -> str | None:
    """The llguidance grammar for a ``response_format`` (None: free text). A schema the grammar
    compiler refuses (an unknown type, a dangling ``$ref``, a bad pattern) is a
    ``ResponseFormatError`` with the compiler's reason."""
    schema = response_format_schema(response_format)
    if schema is None:
        return None
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=_COMPILE_OPTIONS)
    except ValueError as exc:
        raise ResponseFormatError(f"json_schema.schema: {exc}") from exc
    problem = llguidance.LLMatcher.validate_grammar(grammar)
    if problem:
        raise ResponseFormatError(f"json_schema.schema is not usable: {problem}")
    return grammar
