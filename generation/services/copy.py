"""Product copy: brand-voice examples (the only code that writes ``BrandExample`` rows) and product
catalogues read for batch copy. The prompt the ``copy`` and ``recommendation`` runners give the
model, the truthful parts of a candidate built from the attributes and the fine-tuning rows live
beside the runner (``workers.runners.copy``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from rest_framework import serializers

from generation import roles
from generation.exceptions import Conflict, Forbidden, NotFound
from generation.kinds.copy import AttributesField
from generation.text.tables import CsvError, csv_read

WRITE_ROLES = frozenset({roles.MARKETER, roles.ADMIN})
READ_ROLES = frozenset({roles.MARKETER, roles.REVIEWER, roles.ADMIN})
EMBED_JOB_KIND = "brand_example_embed"


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


# --- catalogues (copy_batch, copy_evaluate) ----------------------------------------------------


def catalogue_read(path: str, *, limit: int | None = None) -> tuple[list[tuple[int, dict]], list[dict]]:
    """A product CSV (one product per row; the columns are attribute names, empty cells are
    absent attributes): ``([(line, attributes)], [{"line", "errors"}])``. Every row is validated
    with the ``copy`` kind's attribute rules; line 1 is the header."""
    field = AttributesField()
    rows, errors = [], []
    max_rows = settings.GENAI_COPY_MAX_BATCH_ROWS
    try:
        if limit is not None and limit <= max_rows:
            table = csv_read(path, max_rows=limit)
        else:
            table = csv_read(path, max_rows=max_rows, over_max="error")
    except CsvError as exc:
        raise ValueError(f"{exc} (GENAI_COPY_MAX_BATCH_ROWS is {max_rows})" if "more than" in str(exc) else str(exc)) from None
    for line, record in zip(table.lines, table.rows):
        if None in record:
            errors.append({"line": line, "errors": {"row": [f"{len(record[None])} cells more than the header has"]}})
            continue
        try:
            rows.append((line, field.run_validation({k: v for k, v in record.items() if k})))
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, list) else [exc.detail]
            errors.append({"line": line, "errors": {"attributes": [str(d) for d in detail]}})
    return rows, errors
