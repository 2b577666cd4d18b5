"""A job kind's params serializer as an HTML form and as CSV columns: the marketer's product
form and bulk upload work for whatever fields the ``copy`` kind declares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rest_framework import fields as drf
from rest_framework import serializers

# Generation knobs a marketer does not need on the product form (kept at their defaults).
TECHNICAL = {"seed", "temperature", "max_new_tokens", "top_p", "top_k", "stop", "priority"}
LABELS = {"n": "Candidates"}


@dataclass
class FormField:
    name: str
    label: str
    widget: str  # text | textarea | number | select | checkbox | lines | keyvalue | json
    required: bool
    help_text: str
    choices: list[tuple[str, str]]
    default: Any
    min_value: Any = None
    max_value: Any = None
    max_length: int | None = None


def _widget(field: drf.Field) -> str | None:
    if isinstance(field, serializers.BaseSerializer):
        return "json"
    if isinstance(field, drf.ChoiceField):
        return "select"
    if isinstance(field, drf.BooleanField):
        return "checkbox"
    if isinstance(field, (drf.IntegerField, drf.FloatField, drf.DecimalField)):
        return "number"
    if isinstance(field, drf.ListField):
        return "lines"
    if isinstance(field, drf.DictField):
        return "keyvalue"
    if isinstance(field, drf.JSONField):
        return "json"
    if isinstance(field, drf.CharField):
        return "textarea" if (field.max_length or 10_000) > 200 else "text"
    return "text"


def form_fields(serializer_class: type[serializers.Serializer], *, technical: bool = False) -> list[FormField]:
    out = []
    for name, field in serializer_class().fields.items():
        if field.read_only or (name in TECHNICAL and not technical):
            continue
        default = None if field.default is drf.empty else field.default
        if callable(default):
            default = default()
        out.append(
            FormField(
                name=name,
                label=LABELS.get(name) or (field.label or name.replace("_", " ")).capitalize(),
                widget=_widget(field),
                required=field.required,
                help_text=str(field.help_text or ""),
                choices=[(str(k), str(v)) for k, v in getattr(field, "choices", {}).items()],
                default=default,
                min_value=getattr(field, "min_value", None),
                max_value=getattr(field, "max_value", None),
                max_length=getattr(field, "max_length", None),
            )
        )
    return out


def value_parse(field: FormField, raw: str | None) -> Any:
    """A form or CSV cell as the serializer expects it; ``drf.empty`` for a blank optional value."""
    if field.widget == "checkbox":
        return raw not in (None, "", "0", "false", "False", "no", "off")
    raw = (raw or "").strip()
    if raw == "":
        return drf.empty
    if field.widget == "lines":
        parts = raw.splitlines() if "\n" in raw else raw.split(";") if ";" in raw else raw.split(",")
        return [p.strip() for p in parts if p.strip()]
    if field.widget == "keyvalue":
        pairs = {}
        for part in raw.splitlines() if "\n" in raw else raw.split(";"):
            if not part.strip():
                continue
            key, sep, value = part.partition(":") if ":" in part else part.partition("=")
            pairs[key.strip()] = value.strip() if sep else ""
        return pairs
    if field.widget == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            return f"<invalid JSON: {exc.msg}>"
    return raw


def params_from(fields: list[FormField], data) -> dict:
    params = {}
    for field in fields:
        value = value_parse(field, data.get(field.name))
        if value is not drf.empty:
            params[field.name] = value
    return params
