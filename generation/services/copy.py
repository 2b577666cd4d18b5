"""Product copy: brand-voice examples (the only code that writes ``BrandExample`` rows), the
prompts the ``copy`` and ``recommendation`` runners give the model, the truthful parts of a
candidate built from the attributes (title, bullet points, fallback description), and the
chat-format fine-tuning rows built from the brand examples (``copy_training_examples``).

Prompt design, for a 135M model that covers about 60% of the attributes it is given and invents
the rest when prompted loosely:

- the attributes are an explicit list, one ``- Key: value`` line each, in a fixed order;
- the instruction repeats the rule that matters (every fact, nothing else) and the length;
- up to ``GENAI_COPY_PROMPT_EXAMPLES`` brand examples (the most similar to the product, of its
  brand and collection) are earlier turns of the chat: their attributes (when stored) or their
  brand as the user's turn, their text as the assistant's. Without stored examples a built-in
  example of the same shape shows what a complete, truthful description looks like;
- the assistant's turn starts with the product's brand and name, so the text is about *it*.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from rest_framework import serializers

from generation import roles
from generation.copycheck import KNOWN_KEYS, attribute_items, content_words
from generation.exceptions import Conflict, Forbidden, NotFound

TONES = ("neutral", "playful", "premium", "technical")
LENGTHS = ("short", "medium", "long")
LENGTH_WORDS = {"short": 35, "medium": 70, "long": 120}
LENGTH_TOKENS = {"short": 96, "medium": 170, "long": 280}
TONE_WORDS = {
    "neutral": "clear, friendly and informative",
    "playful": "playful, upbeat and fun",
    "premium": "elegant, refined and premium",
    "technical": "precise and technical, focused on specifications",
}
WRITE_ROLES = frozenset({roles.MARKETER, roles.ADMIN})
READ_ROLES = frozenset({roles.MARKETER, roles.REVIEWER, roles.ADMIN})
EMBED_JOB_KIND = "brand_example_embed"

SYSTEM_PROMPT = (
    "You are a copywriter for an online shop. You write product descriptions in a {tone} tone. "
    "Use every fact in the list and nothing else: never add a colour, material, brand, size, "
    "number or feature that is not in the list."
)

# Shown when a brand has no stored examples: one product per family, complete and truthful.
BUILTIN_EXAMPLES: tuple[tuple[dict, str], ...] = (
    (
        {"name": "Ridge Daypack", "brand": "Example Co", "category": "Backpack", "colour": "Rust",
         "material": "Waxed canvas", "price": "95 EUR", "features": "padded laptop sleeve; two side pockets",
         "audience": "commuters"},
        "The Example Co Ridge Daypack is a backpack made for commuters. Its waxed canvas body comes in a warm "
        "rust colour, and inside you will find a padded laptop sleeve, with two side pockets for the small "
        "things. A sturdy everyday companion for 95 EUR.",
    ),
)

_KEY_LABELS = {"colour": "Colour", "color": "Colour", "sizes": "Sizes", "size": "Size"}


def _key_label(key: str) -> str:
    key = re.sub(r"[_\-]+", " ", str(key)).strip()
    return _KEY_LABELS.get(key.lower(), key[:1].upper() + key[1:])


def attributes_ordered(attributes: Mapping[str, object]) -> list[tuple[str, list[str]]]:
    """(key, items) in a fixed order: the known keys first, then the free keys as given."""
    lowered = {str(k).strip().lower(): k for k in attributes}
    order = [lowered[k] for k in KNOWN_KEYS if k in lowered]
    if "color" in lowered and "colour" not in lowered:
        order.insert(min(3, len(order)), lowered["color"])
    order += [k for k in attributes if k not in order]
    return [(k, attribute_items(k, attributes[k])) for k in order if attribute_items(k, attributes[k])]


def attributes_prompt(attributes: Mapping[str, object]) -> str:
    """``- Key: value`` lines, list items joined with commas."""
    return "\n".join(f"- {_key_label(k)}: {', '.join(items)}" for k, items in attributes_ordered(attributes))


def copy_user_turn(*, attributes: Mapping[str, object], length: str, segment: Mapping | None = None) -> str:
    words = LENGTH_WORDS.get(length, 70)
    text = f"Product facts:\n{attributes_prompt(attributes)}\n\n"
    if segment:
        who = segment.get("name", "")
        if segment.get("description"):
            who += f" ({segment['description']})"
        text += f"Write for this audience: {who}.\n"
    text += f"Write a product description of about {words} words that uses every fact above and nothing else."
    return text


def copy_messages(
    *,
    attributes: Mapping[str, object],
    tone: str,
    length: str,
    segment: Mapping | None = None,
    examples: Sequence[tuple[Mapping, str]] = (),
) -> list[dict]:
    """The chat for one product (and audience segment): system, few-shot turns, the request."""
    turns = [{"role": "system", "content": SYSTEM_PROMPT.format(tone=TONE_WORDS.get(tone, TONE_WORDS["neutral"]))}]
    for example_attributes, text in examples or BUILTIN_EXAMPLES:
        turns.append({"role": "user", "content": copy_user_turn(attributes=example_attributes, length=length)})
        turns.append({"role": "assistant", "content": text.strip()})
    turns.append({"role": "user", "content": copy_user_turn(attributes=attributes, length=length, segment=segment)})
    return turns


def _value(attributes: Mapping[str, object], key: str) -> str:
    for k, v in attributes.items():
        if str(k).strip().lower() == key:
            return ", ".join(attribute_items(k, v))
    return ""


def copy_prefix(attributes: Mapping[str, object]) -> str:
    """The words the assistant's turn starts with: "The <brand> <name>"."""
    brand, name = _value(attributes, "brand"), _value(attributes, "name")
    if name and brand and brand.lower() not in name.lower():
        return f"The {brand} {name}"
    if name:
        return f"The {name}"
    return ""


def copy_title(attributes: Mapping[str, object]) -> str:
    """Brand, name, and the category when the name does not already say it."""
    brand, name, category = (_value(attributes, k) for k in ("brand", "name", "category"))
    title = name or category
    if brand and brand.lower() not in title.lower():
        title = f"{brand} {title}".strip()
    if category and name and not set(content_words(category)) <= set(content_words(name)):
        title = f"{title} – {category}"
    return title.strip()


def copy_bullets(attributes: Mapping[str, object]) -> list[str]:
    """One bullet per feature, then one per other attribute ("Material: linen"); the name,
    brand and category are the title's."""
    bullets = []
    for key, items in attributes_ordered(attributes):
        lowered = str(key).strip().lower()
        if lowered in ("name", "brand", "category"):
            continue
        if lowered in ("features", "feature"):
            bullets += [item[:1].upper() + item[1:] for item in items]
        elif lowered == "audience":
            bullets.append(f"Made for {', '.join(items)}")
        else:
            bullets.append(f"{_key_label(key)}: {', '.join(items)}")
    return bullets


def copy_fallback_description(attributes: Mapping[str, object]) -> str:
    """A plain description stating the attributes, for when every generated one failed."""
    brand, name, category = (_value(attributes, k) for k in ("brand", "name", "category"))
    colour, material = _value(attributes, "colour") or _value(attributes, "color"), _value(attributes, "material")
    subject = " ".join(p for p in (brand, name) if p) or category or "This product"
    sentence = f"The {subject}" if (brand or name) else subject
    if category and name:
        sentence += f" is a {category.lower()}"
        if colour:
            sentence += f" in {colour.lower()}"
        if material:
            sentence += f", made of {material[:1].lower() + material[1:]}"
    sentence += "."
    parts = [sentence]
    features = [f for k, items in attributes_ordered(attributes) if str(k).lower() in ("features", "feature") for f in items]
    if features:
        listed = features[0] if len(features) == 1 else ", ".join(features[:-1]) + " and " + features[-1]
        parts.append(f"It comes with {listed[:1].lower() + listed[1:]}.")
    audience = _value(attributes, "audience")
    if audience:
        parts.append(f"Made for {audience}.")
    return " ".join(parts)


def copy_text(*, title: str, description: str, bullets: Sequence[str]) -> str:
    """The readable candidate: title, description, bullet points."""
    lines = [title, "", description]
    if bullets:
        lines += [""] + [f"• {b}" for b in bullets]
    return "\n".join(lines).strip()


# --- brand examples --------------------------------------------------------------------------


def _brand_example_model():
    from generation.models import BrandExample

    return BrandExample


def brand_example_text_hash(*, brand: str, collection: str, text: str) -> str:
    """Brand and collection compared case-insensitively, as the copy runner looks them up."""
    return hashlib.sha256(f"{brand.strip().lower()}\n{collection.strip().lower()}\n{text.strip()}".encode()).hexdigest()


def _write_check(user: AbstractBaseUser) -> None:
    if not roles.user_has_role(user, *WRITE_ROLES):
        raise Forbidden(f"Brand examples are written by the roles {', '.join(sorted(WRITE_ROLES))}.")


def _read_check(user: AbstractBaseUser) -> None:
    if not roles.user_has_role(user, *READ_ROLES):
        raise Forbidden(f"Brand examples are read by the roles {', '.join(sorted(READ_ROLES))}.")


def brand_example_list(*, user: AbstractBaseUser, brand: str | None = None, collection: str | None = None) -> QuerySet:
    """Brand examples, newest first, without their embedding bytes (the read side)."""
    _read_check(user)
    rows = _brand_example_model().objects.defer("embedding")
    if brand:
        rows = rows.filter(brand__iexact=brand)
    if collection is not None:
        rows = rows.filter(collection__iexact=collection)
    return rows


def brand_example_get(*, user: AbstractBaseUser, example_id: int | str):
    pk = int(example_id) if str(example_id).isdigit() and len(str(example_id)) < 19 else None
    example = brand_example_list(user=user).filter(pk=pk).first() if pk is not None else None
    if example is None:
        raise NotFound(f"No brand example with id {example_id!r}.", field="id")
    return example


def _embed_enqueue(*, owner: AbstractBaseUser) -> None:
    """A ``brand_example_embed`` job after commit: the queued one if there is one."""
    from generation.models import Job, JobStatus
    from generation.services.jobs import job_create

    if Job.objects.filter(kind=EMBED_JOB_KIND, status=JobStatus.QUEUED).exists():
        return
    try:
        with transaction.atomic():
            job_create(owner=owner, kind=EMBED_JOB_KIND, params={})
    except Exception as exc:  # the example stands; the copy runner embeds missing vectors itself
        from generation.exceptions import DomainError

        if not isinstance(exc, DomainError):
            raise


def brand_example_create(
    *,
    user: AbstractBaseUser,
    brand: str,
    text: str,
    collection: str = "",
    attributes: Mapping[str, object] | None = None,
):
    """Store an example description of a brand (and collection); its embedding is computed by
    a ``brand_example_embed`` job queued after commit."""
    _write_check(user)
    BrandExample = _brand_example_model()
    brand, collection, text = brand.strip(), collection.strip(), text.strip()
    content_hash = brand_example_text_hash(brand=brand, collection=collection, text=text)
    if BrandExample.objects.filter(brand__iexact=brand, collection__iexact=collection, content_hash=content_hash).exists():
        raise Conflict("This brand and collection already have this example text.", field="text")
    try:
        with transaction.atomic():
            example = BrandExample.objects.create(
                brand=brand, collection=collection, text=text, attributes=dict(attributes or {}),
                content_hash=content_hash, created_by=user,
            )
    except IntegrityError as exc:
        raise Conflict("This brand and collection already have this example text.", field="text") from exc
    _embed_enqueue(owner=user)
    return example


def brand_example_update(*, user: AbstractBaseUser, example_id: int | str, **changes):
    """Change an example's brand, collection, text, attributes or active flag; a changed text
    is embedded again."""
    _write_check(user)
    example = brand_example_get(user=user, example_id=example_id)
    for field_name in ("brand", "collection", "text"):
        if field_name in changes and changes[field_name] is not None:
            setattr(example, field_name, str(changes[field_name]).strip())
    if changes.get("attributes") is not None:
        example.attributes = dict(changes["attributes"])
    if changes.get("active") is not None:
        example.active = bool(changes["active"])
    example.content_hash = brand_example_text_hash(brand=example.brand, collection=example.collection, text=example.text)
    try:
        with transaction.atomic():
            example.save()
    except IntegrityError as exc:
        raise Conflict("This brand and collection already have this example text.", field="text") from exc
    if example.embedded_hash != example.content_hash:
        _embed_enqueue(owner=user)
    return example


def brand_example_delete(*, user: AbstractBaseUser, example_id: int | str) -> None:
    _write_check(user)
    brand_example_get(user=user, example_id=example_id).delete()


def brand_example_embeddings_store(*, model_name: str, vectors: Sequence[tuple[int, str, bytes]]) -> int:
    """Store embeddings computed from rows read earlier: (id, content_hash read, float32 bytes);
    a row edited meanwhile keeps its new hash and stays pending."""
    from django.utils import timezone

    BrandExample = _brand_example_model()
    now = timezone.now()
    stored = 0
    with transaction.atomic():
        for pk, content_hash, vector in vectors:
            stored += BrandExample.objects.filter(pk=pk).update(
                embedding=vector, embedding_model=model_name, embedded_hash=content_hash, embedded_at=now
            )
    return stored


def brand_examples_for(*, brand: str, collection: str = "") -> list:
    """Active examples of a brand (any case); of the collection first when one is given."""
    rows = list(_brand_example_model().objects.filter(active=True, brand__iexact=brand.strip()).order_by("pk"))
    if collection:
        same = [r for r in rows if r.collection.lower() == collection.strip().lower()]
        if same:
            return same
    return rows


def copy_training_examples(*, brand: str | None = None) -> list[dict]:
    """Chat-format fine-tuning rows from the active brand examples (of ``brand``, or all):
    ``{"messages": [system, user (the attributes prompt), assistant (the example text)]}``,
    the same prompt the ``copy`` runner gives the model (neutral tone, medium length)."""
    rows = _brand_example_model().objects.filter(active=True).order_by("pk")
    if brand:
        rows = rows.filter(brand__iexact=brand.strip())
    out = []
    for example in rows:
        attributes = dict(example.attributes or {})
        attributes.setdefault("brand", example.brand)
        if example.collection:
            attributes.setdefault("collection", example.collection)
        messages = copy_messages(attributes=attributes, tone="neutral", length="medium", examples=[])
        # No few-shot turns in training rows: the fine-tuned model learns the voice itself.
        out.append({"messages": [messages[0], messages[-1], {"role": "assistant", "content": example.text}]})
    return out



# --- catalogues (copy_batch, copy_evaluate) ----------------------------------------------------


def catalogue_read(path: str, *, limit: int | None = None) -> tuple[list[tuple[int, dict]], list[dict]]:
    """A product CSV (one product per row; the columns are attribute names, empty cells are
    absent attributes): ``([(line, attributes)], [{"line", "errors"}])``. Every row is validated
    with the ``copy`` kind's attribute rules; line 1 is the header."""
    import csv

    from generation.kinds.copy import AttributesField

    field = AttributesField()
    rows, errors = [], []
    max_rows = settings.GENAI_COPY_MAX_BATCH_ROWS
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not any((name or "").strip() for name in reader.fieldnames):
            raise ValueError(f"{path}: no header row with attribute names")
        for record in reader:
            line = reader.line_num
            if limit is not None and len(rows) + len(errors) >= limit:
                break
            if len(rows) + len(errors) >= max_rows:
                raise ValueError(f"{path}: more than {max_rows} products (GENAI_COPY_MAX_BATCH_ROWS)")
            if None in record:
                errors.append({"line": line, "errors": {"row": [f"{len(record[None])} cells more than the header has"]}})
                continue
            try:
                rows.append((line, field.run_validation({k.strip(): v for k, v in record.items() if k and v is not None})))
            except serializers.ValidationError as exc:
                detail = exc.detail if isinstance(exc.detail, list) else [exc.detail]
                errors.append({"line": line, "errors": {"attributes": [str(d) for d in detail]}})
    return rows, errors
