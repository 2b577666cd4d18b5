"""The knowledge base: import of help-centre docs and past conversations, and the embedding
bookkeeping. The only code that writes ``KnowledgeDoc`` and ``Conversation`` rows.

Import (``knowledge_import_file`` for CSV/JSONL files, ``knowledge_import_rows`` for JSON rows;
``manage.py kb_import`` and ``POST /api/knowledge/import`` call them):

- columns are mapped to fields by an explicit mapping (``{"question": "title"}``), then by a
  preset recognised from the header (the Bitext customer-support CSV), then by common names
  (``title``, ``body``, ``message``, ``reply``, ...);
- every row is validated first; bad rows are reported with their line numbers and, unless
  ``skip_bad``, nothing is written. The good rows are written in one transaction;
- a row is identified by ``(source, external_id)``: the file's id column, else a SHA-256 of the
  row's mapped content, so importing the same file again changes nothing, and a row whose id
  is known but whose content changed is updated (and re-embedded);
- personal data in conversations is masked (``generation.privacy.pii_mask``) before storing;
- line ends are stored as ``\\n`` (the Bitext CSV's answers use ``\\r\\n``);
- after commit a ``knowledge_embed`` job embeds the new and changed rows (one queued job at a
  time: a queued job picks up every row that needs it when it runs).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Literal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import serializers

from generation import roles
from generation.exceptions import (
    AdmissionRejected,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
)
from generation.models import Conversation, Job, JobStatus, KnowledgeDoc, KnowledgeItem
from generation.privacy import pii_mask
from generation.text.sentences import line_ends_normalise

logger = logging.getLogger(__name__)

KnowledgeKind = Literal["docs", "conversations"]
KINDS: tuple[KnowledgeKind, ...] = ("docs", "conversations")
FORMATS = ("csv", "jsonl")
IMPORT_ROLES = frozenset({roles.AGENT, roles.ADMIN})
READ_ROLES = frozenset(roles.ROLES)
EMBED_JOB_KIND = "knowledge_embed"
DEFAULT_EMBED_MODEL = "all-minilm-l6-v2"
_SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_WRITE_BATCH = 500


# --- row validation -------------------------------------------------------------------------


class _TagsField(serializers.ListField):
    child = serializers.CharField(max_length=64)

    def __init__(self, **kwargs):
        super().__init__(max_length=settings.GENAI_KB_MAX_TAGS, **kwargs)

    def to_internal_value(self, data):
        tags = super().to_internal_value(data)
        return list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))


class _RowSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, required=False)
    language = serializers.CharField(max_length=16, required=False, default="en")
    active = serializers.BooleanField(required=False, default=True)


class DocRowSerializer(_RowSerializer):
    title = serializers.CharField(max_length=settings.GENAI_KB_MAX_TITLE_CHARS)
    body = serializers.CharField(max_length=settings.GENAI_KB_MAX_TEXT_CHARS)
    tags = _TagsField(required=False, default=list)


class ConversationRowSerializer(_RowSerializer):
    customer_message = serializers.CharField(max_length=settings.GENAI_KB_MAX_TEXT_CHARS)
    agent_reply = serializers.CharField(max_length=settings.GENAI_KB_MAX_TEXT_CHARS)
    intent = serializers.CharField(max_length=100, required=False, default="")
    category = serializers.CharField(max_length=100, required=False, default="")


@dataclass(frozen=True)
class KindSpec:
    model: type[KnowledgeItem]
    row_serializer: type[_RowSerializer]
    required: tuple[str, ...]
    masked: tuple[str, ...]  # fields whose personal data is masked before storing
    # field -> column names recognised without a mapping, first match wins
    aliases: dict[str, tuple[str, ...]]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.row_serializer().fields)


SPECS: dict[str, KindSpec] = {
    "docs": KindSpec(
        model=KnowledgeDoc,
        row_serializer=DocRowSerializer,
        required=("title", "body"),
        masked=(),
        aliases={
            "external_id": ("external_id", "id", "doc_id", "article_id", "slug"),
            "title": ("title", "question", "subject", "name", "instruction"),
            "body": ("body", "answer", "content", "text", "response"),
            "tags": ("tags", "keywords", "labels"),
            "language": ("language", "lang", "locale"),
            "active": ("active",),
        },
    ),
    "conversations": KindSpec(
        model=Conversation,
        row_serializer=ConversationRowSerializer,
        required=("customer_message", "agent_reply"),
        masked=("customer_message", "agent_reply"),
        aliases={
            "external_id": ("external_id", "id", "conversation_id", "ticket_id"),
            "customer_message": ("customer_message", "message", "question", "query", "customer", "instruction", "text"),
            "agent_reply": ("agent_reply", "reply", "answer", "agent", "response"),
            "intent": ("intent", "label"),
            "category": ("category",),
            "language": ("language", "lang", "locale"),
            "active": ("active",),
        },
    ),
}

# The Bitext customer-support CSV (../shared/data/customer_support/): recognised by its header.
# Its `tags` column holds Bitext's language-variation codes (BIL, BLQ, ...), not content tags.
BITEXT_COLUMNS = frozenset({"instruction", "response", "intent", "category"})
BITEXT_MAPPING: dict[str, dict[str, tuple[str, ...]]] = {
    "docs": {"title": ("instruction",), "body": ("response",), "tags": ("intent", "category")},
    "conversations": {
        "customer_message": ("instruction",),
        "agent_reply": ("response",),
        "intent": ("intent",),
        "category": ("category",),
    },
}


def knowledge_model(kind: str) -> type[KnowledgeItem]:
    return SPECS[kind].model


def embedding_model_name(setting: str | None = None) -> str:
    """The name stored with each embedding (of ``setting``, a ``GENAI_KB_EMBED_MODEL`` value, by
    default the setting's own); rows embedded by another model are re-embedded."""
    setting = setting or settings.GENAI_KB_EMBED_MODEL
    return "all-MiniLM-L6-v2" if setting == DEFAULT_EMBED_MODEL else Path(setting).name


# --- mapping --------------------------------------------------------------------------------


def knowledge_mapping_resolve(
    *, kind: str, columns: Iterable[str], mapping: dict[str, str] | None = None, require: bool = True
) -> dict[str, tuple[str, ...]]:
    """field -> source columns, for a file with ``columns``. ``mapping`` is column -> field.

    Raises ``InvalidInput`` (field ``map``) for an unknown field, a scalar field given two
    columns, or (with ``require``) a required field with no column.
    """
    spec = SPECS[kind]
    columns = list(columns)
    resolved: dict[str, list[str]] = {}
    for column, target in (mapping or {}).items():
        if target not in spec.fields:
            raise InvalidInput({"map": [f"Unknown field {target!r} for {kind}; fields: {', '.join(spec.fields)}."]})
        resolved.setdefault(target, []).append(column)
    for target, sources in resolved.items():
        if len(sources) > 1 and target != "tags":
            raise InvalidInput({"map": [f"Columns {', '.join(sources)} all map to {target!r}; only `tags` takes several."]})
    used = {c for sources in resolved.values() for c in sources}
    if BITEXT_COLUMNS <= set(columns):
        for target, sources in BITEXT_MAPPING[kind].items():
            if target not in resolved and not used & set(sources):
                resolved[target] = list(sources)
                used |= set(sources)
    for target, names in spec.aliases.items():
        if target in resolved:
            continue
        for name in names:
            if name in columns and name not in used:
                resolved[target] = [name]
                used.add(name)
                break
    missing = [f for f in spec.required if f not in resolved]
    if missing and require:
        have = ", ".join(columns) or "none"
        raise InvalidInput(
            {
                "map": [
                    f"No column for {', '.join(missing)} ({kind}); the columns are: {have}. "
                    f"Name one with a mapping, e.g. COLUMN={missing[0]}."
                ]
            }
        )
    return {target: tuple(sources) for target, sources in resolved.items()}


def _tags_parse(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [t for t in re.split(r"[,;|]", value) if t.strip()]
    return [value]  # the serializer names the bad type


def _row_values(record: dict, mapping: dict[str, tuple[str, ...]]) -> dict:
    values: dict = {}
    for target, sources in mapping.items():
        if target == "tags":
            tags: list = []
            for source in sources:
                tags += _tags_parse(record.get(source))
            values["tags"] = tags
            continue
        value = record.get(sources[0])
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # missing: the field's default, or a "required" error
        values[target] = value
    return values


# --- reading files --------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A bad row: where it is (``line`` in the file, or the 1-based item of a JSON list) and
    what is wrong with each field."""

    line: int
    errors: dict[str, list[str]]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Records:
    columns: list[str] | None  # a CSV header; None where each record has its own keys (JSONL, JSON)
    rows: Iterator[tuple[int, dict | RowError]]


def _format_detect(name: str, format: str | None) -> str:
    if format:
        if format not in FORMATS:
            raise InvalidInput({"format": [f"Unknown format {format!r}; formats: {', '.join(FORMATS)}."]})
        return format
    return "jsonl" if Path(name).suffix.lower() in (".jsonl", ".ndjson") else "csv"


def _csv_records(text: IO[str]) -> _Records:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput({"file": ["The file is empty; a CSV needs a header row."]}) from None
    columns = [h.strip() for h in header]
    repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
    if repeated:
        raise InvalidInput({"file": [f"Line 1: the header names {', '.join(map(repr, repeated))} more than once."]})

    def rows() -> Iterator[tuple[int, dict | RowError]]:
        while True:
            line = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InvalidInput({"file": [f"Line {line}: unreadable CSV ({exc})."]}) from None
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                yield line, RowError(line, {"row": [f"Has {len(values)} fields; the header has {len(columns)}."]})
                continue
            yield line, dict(zip(columns, values))

    return _Records(columns=columns, rows=rows())


def _jsonl_records(text: IO[str]) -> _Records:
    def rows() -> Iterator[tuple[int, dict | RowError]]:
        for line, raw in enumerate(text, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield line, RowError(line, {"row": [f"Not valid JSON: {exc.msg} (column {exc.colno})."]})
                continue
            if not isinstance(record, dict):
                yield line, RowError(line, {"row": ["Expected a JSON object."]})
                continue
            yield line, record

    return _Records(columns=None, rows=rows())


# --- import ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    kind: str
    source: str
    rows: int = 0  # rows read (blank lines not counted)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # the same row again in the file
    skipped: int = 0  # bad rows left out (skip_bad)
    deactivated: int = 0  # rows of the source the file no longer has (prune)
    masked: dict[str, int] = field(default_factory=dict)  # personal data replaced, by kind
    errors: list[RowError] = field(default_factory=list)  # the first GENAI_KB_MAX_REPORTED_ERRORS
    embed_job_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["errors"] = [e.as_dict() for e in self.errors]
        return data


class ImportRejected(DomainError):
    """Some rows are invalid and ``skip_bad`` was not given: nothing was imported."""

    status_code = 400
    code = "invalid_rows"

    def __init__(self, *, kind: str, bad_rows: int, rows: int, errors: list[RowError]):
        listed = f" (the first {len(errors)} are listed)" if len(errors) < bad_rows else ""
        super().__init__(
            f"{bad_rows} of {rows} {kind} rows are invalid{listed}; nothing was imported. "
            "Fix them, or skip bad rows to import the others."
        )
        self.bad_rows = bad_rows
        self.row_errors = errors

    def as_payload(self) -> dict:
        return {
            "code": self.code,
            "detail": self.message,
            "bad_rows": self.bad_rows,
            "errors": {"rows": [e.as_dict() for e in self.row_errors]},
        }


def _import_check(*, user: AbstractBaseUser, kind: str, source: str) -> None:
    if not roles.user_has_role(user, *IMPORT_ROLES):
        raise Forbidden(f"Your roles may not import knowledge; allowed roles: {', '.join(sorted(IMPORT_ROLES))}.")
    if kind not in SPECS:
        raise InvalidInput({"kind": [f"Unknown kind {kind!r}; kinds: {', '.join(KINDS)}."]})
    if not _SOURCE_PATTERN.match(source):
        raise InvalidInput(
            {"source": ["1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."]}
        )


def knowledge_import_file(
    *,
    user: AbstractBaseUser,
    file: IO[bytes],
    name: str,
    kind: str = "conversations",
    format: str | None = None,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
    skip_bad: bool = False,
    prune: bool = False,
    embed: bool = True,
) -> ImportReport:
    """Import a CSV (with a header row) or JSONL file of ``kind`` rows; see the module docstring.

    ``format`` defaults from ``name`` (``.jsonl``/``.ndjson``: JSONL, else CSV); ``source``
    defaults to the file name without its extension. ``prune`` deactivates the source's rows the
    file no longer has (only when every row is good).
    """
    source = source or re.sub(r"[^A-Za-z0-9_.\-]", "-", Path(name).stem).lstrip("-_.")[:64] or "upload"
    _import_check(user=user, kind=kind, source=source)
    format = _format_detect(name, format)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        records = _csv_records(text) if format == "csv" else _jsonl_records(text)
        return _import(
            user=user, kind=kind, source=source, records=records, mapping=mapping,
            skip_bad=skip_bad, prune=prune, embed=embed,
        )
    except UnicodeDecodeError as exc:
        raise InvalidInput({"file": [f"Not UTF-8 text ({exc.reason} at byte {exc.start} of a read block)."]}) from None
    finally:
        text.detach()


def knowledge_import_rows(
    *,
    user: AbstractBaseUser,
    rows: list,
    kind: str = "conversations",
    source: str = "api",
    mapping: dict[str, str] | None = None,
    skip_bad: bool = False,
    prune: bool = False,
    embed: bool = True,
) -> ImportReport:
    """Import rows given as JSON objects; errors name the 1-based item instead of a line."""
    _import_check(user=user, kind=kind, source=source)

    def items() -> Iterator[tuple[int, dict | RowError]]:
        for index, row in enumerate(rows, 1):
            yield index, row if isinstance(row, dict) else RowError(index, {"row": ["Expected a JSON object."]})

    records = _Records(columns=None, rows=items())
    return _import(
        user=user, kind=kind, source=source, records=records, mapping=mapping,
        skip_bad=skip_bad, prune=prune, embed=embed,
    )


@dataclass
class _Parsed:
    line: int
    values: dict  # validated fields, personal data masked
    content_hash: str


def _messages(errors) -> list[str]:
    """A field's error messages; a list field's are per item ({0: [...]}): "item 1: ..."."""
    if isinstance(errors, dict):
        return [f"item {int(i) + 1}: {m}" for i, item in errors.items() for m in _messages(item)]
    return [str(m) for m in errors]


def _content_id(values: dict) -> str:
    canonical = json.dumps({k: v for k, v in values.items() if k != "external_id"}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _import(
    *,
    user: AbstractBaseUser,
    kind: str,
    source: str,
    records: _Records,
    mapping: dict[str, str] | None,
    skip_bad: bool,
    prune: bool,
    embed: bool,
) -> ImportReport:
    spec = SPECS[kind]
    report = ImportReport(kind=kind, source=source)
    max_rows, max_errors = settings.GENAI_KB_MAX_IMPORT_ROWS, settings.GENAI_KB_MAX_REPORTED_ERRORS
    knowledge_mapping_resolve(kind=kind, columns=[], mapping=mapping, require=False)  # the mapping's own errors
    file_mapping = None
    if records.columns is not None:
        unknown = sorted(set(mapping or {}) - set(records.columns))
        if unknown:
            raise InvalidInput(
                {"map": [f"No column {', '.join(map(repr, unknown))} in the file; it has: {', '.join(records.columns)}."]}
            )
        file_mapping = knowledge_mapping_resolve(kind=kind, columns=records.columns, mapping=mapping)
    mappings: dict[frozenset, dict[str, tuple[str, ...]]] = {}
    parsed: dict[str, _Parsed] = {}
    masked: Counter = Counter()
    bad = 0

    def reject(error: RowError) -> None:
        nonlocal bad
        bad += 1
        if len(report.errors) < max_errors:
            report.errors.append(error)

    for line, record in records.rows:
        report.rows += 1
        if report.rows > max_rows:
            raise InvalidInput(
                {"file": [f"More than {max_rows} rows (GENAI_KB_MAX_IMPORT_ROWS); split the file."]}
            )
        if isinstance(record, RowError):
            reject(record)
            continue
        row_mapping = file_mapping
        if row_mapping is None:  # JSON objects: each key set resolves once; a missing field is the row's error
            keys = frozenset(record)
            if keys not in mappings:
                mappings[keys] = knowledge_mapping_resolve(kind=kind, columns=sorted(keys), mapping=mapping, require=False)
            row_mapping = mappings[keys]
        serializer = spec.row_serializer(data=_row_values(record, row_mapping))
        if not serializer.is_valid():
            reject(RowError(line, {name: _messages(errors) for name, errors in serializer.errors.items()}))
            continue
        values = dict(serializer.validated_data)
        # The id from the text as given, so that files imported before line ends were normalised
        # update their rows in place instead of adding copies.
        external_id = values.pop("external_id", None) or _content_id(values)
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = line_ends_normalise(value)
        for name in spec.masked:
            values[name], found = pii_mask(values[name])
            masked.update(found)
        content_hash = hashlib.sha256(spec.model(**values).embedding_text().encode()).hexdigest()
        previous = parsed.get(external_id)
        if previous is not None:
            if previous.values == values:
                report.duplicates += 1
            else:
                reject(
                    RowError(line, {"external_id": [f"Id {external_id!r} is also on line {previous.line}, with other content."]})
                )
            continue
        parsed[external_id] = _Parsed(line=line, values=values, content_hash=content_hash)

    report.masked = {str(k): n for k, n in sorted(masked.items())}
    if bad and not skip_bad:
        raise ImportRejected(kind=kind, bad_rows=bad, rows=report.rows, errors=report.errors)
    report.skipped = bad
    if prune and bad:
        prune = False
        report.notes.append(f"Not pruned: {bad} bad rows were skipped, and their rows may be in the file.")
    try:
        with transaction.atomic():
            _write(spec=spec, source=source, parsed=parsed, prune=prune, report=report)
            if embed and (report.created or report.updated):
                report.embed_job_id = _embed_enqueue_safely(owner=user, report=report)
    except IntegrityError:
        raise Conflict(
            f"Another import of source {source!r} wrote some of these rows meanwhile; nothing was imported. Retry."
        ) from None
    logger.info(
        "knowledge imported: %s from %s, %d rows, %d created, %d updated, %d unchanged, %d skipped",
        kind, source, report.rows, report.created, report.updated, report.unchanged, report.skipped,
    )
    return report


def _write(*, spec: KindSpec, source: str, parsed: dict[str, _Parsed], prune: bool, report: ImportReport) -> None:
    model = spec.model
    now = timezone.now()
    ids = list(parsed)
    existing: dict[str, KnowledgeItem] = {}
    for start in range(0, len(ids), _WRITE_BATCH):
        for row in model.objects.filter(source=source, external_id__in=ids[start : start + _WRITE_BATCH]):
            existing[row.external_id] = row
    to_create, to_update = [], []
    for external_id, item in parsed.items():
        row = existing.get(external_id)
        if row is None:
            to_create.append(model(source=source, external_id=external_id, content_hash=item.content_hash, **item.values))
            continue
        if row.content_hash == item.content_hash and all(getattr(row, k) == v for k, v in item.values.items()):
            report.unchanged += 1
            continue
        for name, value in item.values.items():
            setattr(row, name, value)
        row.content_hash = item.content_hash
        row.updated_at = now
        to_update.append(row)
    model.objects.bulk_create(to_create, batch_size=_WRITE_BATCH)
    written = [f for f in spec.fields if f != "external_id"]
    model.objects.bulk_update(to_update, [*written, "content_hash", "updated_at"], batch_size=_WRITE_BATCH)
    report.created, report.updated = len(to_create), len(to_update)
    if prune:
        stale = [
            pk
            for pk, external_id in model.objects.filter(source=source, active=True).values_list("pk", "external_id")
            if external_id not in parsed
        ]
        for start in range(0, len(stale), _WRITE_BATCH):
            model.objects.filter(pk__in=stale[start : start + _WRITE_BATCH]).update(active=False, updated_at=now)
        report.deactivated = len(stale)


# --- embeddings -----------------------------------------------------------------------------


def knowledge_system_user() -> AbstractBaseUser:
    """The account that owns the embedding jobs ``kb_import`` enqueues when no user is named (agent)."""
    from generation.services.users import system_user_get

    return system_user_get(username=settings.GENAI_KB_SYSTEM_USER, role=roles.AGENT)


def knowledge_embed_enqueue(*, owner: AbstractBaseUser, kinds: Iterable[str] = KINDS) -> Job:
    """A ``knowledge_embed`` job for the rows that need embeddings: the queued one if there is
    one (it embeds every pending row when it runs), else a new one, enqueued after commit."""
    from generation.services.jobs import job_create

    kinds = sorted(set(kinds))
    queued = (
        Job.objects.filter(kind=EMBED_JOB_KIND, status=JobStatus.QUEUED).order_by("created_at").first()
    )
    if queued is not None and set(queued.params.get("kinds", KINDS)) >= set(kinds) and not queued.params.get("force"):
        return queued
    job, _ = job_create(owner=owner, kind=EMBED_JOB_KIND, params={"kinds": kinds})
    return job


def _embed_enqueue_safely(*, owner: AbstractBaseUser, report: ImportReport) -> str | None:
    """The import stands even when its embedding job cannot be queued now."""
    try:
        with transaction.atomic():
            return str(knowledge_embed_enqueue(owner=owner, kinds=[report.kind]).id)
    except (AdmissionRejected, Forbidden) as exc:
        report.notes.append(f"Embedding job not queued: {exc.message} Run a knowledge_embed job later.")
        return None


def knowledge_embeddings_store(*, kind: str, model_name: str, vectors: Iterable[tuple[int, str, bytes]]) -> int:
    """Store embeddings computed from rows read earlier: ``(row id, content_hash read, float32
    bytes)``. The hash read is stored with the vector, so a row edited meanwhile stays pending
    and is embedded again. Returns the number of rows stored."""
    model = knowledge_model(kind)
    now = timezone.now()
    stored = 0
    with transaction.atomic():
        for pk, content_hash, vector in vectors:
            stored += model.objects.filter(pk=pk).update(
                embedding=vector, embedding_model=model_name, embedded_hash=content_hash, embedded_at=now
            )
    return stored


def knowledge_active_set(*, kind: str, ids: Iterable[int], active: bool) -> int:
    """Activate or deactivate rows (inactive rows are not searched)."""
    return knowledge_model(kind).objects.filter(pk__in=list(ids)).exclude(active=active).update(
        active=active, updated_at=timezone.now()
    )
