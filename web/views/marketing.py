"""The marketer's pages: a product form and a CSV upload that create ``copy`` jobs, a batch
progress bar, candidates side by side with the attribute checker's marks, submit for review."""

from __future__ import annotations

import csv
import io
import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from rest_framework.fields import empty as _EMPTY

from generation import roles, selectors as job_selectors
from generation.exceptions import DomainError, InvalidInput
from generation.kinds import kind_get
from generation.models import Job
from generation.services.jobs import job_create, job_params_validate
from review import selectors
from review.services.reviews import review_item_submit
from review.services.safety import candidate_flag_reasons, candidate_is_flagged
from web.views.common import error_messages, role_required
from web.views.params_form import form_fields, params_from, value_parse

COPY_KIND = "copy"
MARKETING_ROLES = (roles.MARKETER,)
BATCHES_KEPT = 20


def _copy_fields():
    kind = kind_get(COPY_KIND)
    return (kind, form_fields(kind.params_serializer)) if kind else (None, [])


def _page_context(request: HttpRequest, **extra) -> dict:
    kind, fields = _copy_fields()
    return {
        "kind": kind, "fields": fields, "values": {},
        "max_csv_kb": settings.GENAI_WEB_MAX_CSV_BYTES // 1024, "max_csv_rows": settings.GENAI_WEB_MAX_CSV_ROWS,
        "columns": [f.name for f in fields], "required_columns": [f.name for f in fields if f.required],
        "batches": list(reversed(list(request.session.get("copy_batches", {}).items())))[:5],
        **extra,
    }


@role_required(*MARKETING_ROLES)
def marketing_page(request: HttpRequest) -> HttpResponse:
    return render(request, "web/marketing.html", _page_context(request))


def _batch_store(request: HttpRequest, job_ids: list[str]) -> str:
    batches = dict(request.session.get("copy_batches", {}))
    batch_id = uuid.uuid4().hex[:12]
    batches[batch_id] = job_ids
    request.session["copy_batches"] = dict(list(batches.items())[-BATCHES_KEPT:])
    return batch_id


def _errors_response(request: HttpRequest, errors: list[str], **extra) -> HttpResponse:
    if request.htmx:
        return render(request, "web/partials/errors.html", {"errors": errors})
    return render(request, "web/marketing.html", _page_context(request, errors=errors, **extra), status=400)


def _to_batch(request: HttpRequest, job_ids: list[str]) -> HttpResponse:
    batch_id = _batch_store(request, job_ids)
    url = f"/marketing/batches/{batch_id}/"
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_POST
@role_required(*MARKETING_ROLES)
def marketing_create(request: HttpRequest) -> HttpResponse:
    kind, fields = _copy_fields()
    if kind is None:
        return _errors_response(request, ["The copy job kind is not installed on this server."])
    params = params_from(fields, request.POST)
    try:
        job, _ = job_create(owner=request.user, kind=COPY_KIND, params=params)
    except DomainError as exc:
        return _errors_response(request, error_messages(exc), values=request.POST)
    return _to_batch(request, [str(job.id)])


@require_POST
@role_required(*MARKETING_ROLES)
def marketing_upload(request: HttpRequest) -> HttpResponse:
    """A CSV with one product per row (columns: the copy kind's params). Every row is checked
    first; nothing is created unless all rows are valid (errors name the line and column)."""
    kind, fields = _copy_fields()
    if kind is None:
        return _errors_response(request, ["The copy job kind is not installed on this server."])
    upload = request.FILES.get("file")
    if upload is None:
        return _errors_response(request, ["file: Choose a CSV file to upload."])
    limit = settings.GENAI_WEB_MAX_CSV_BYTES
    if upload.size > limit:
        return _errors_response(
            request, [f"file: {upload.name} is {upload.size // 1024} KB; the limit is {limit // 1024} KB (GENAI_WEB_MAX_CSV_BYTES)."]
        )
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return _errors_response(request, ["file: Not UTF-8 text; save the sheet as CSV (UTF-8)."])
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or []) if h is not None]
    if not header:
        return _errors_response(request, ["file: The CSV is empty; line 1 must name the columns."])
    by_name = {f.name: f for f in fields}
    errors = []
    unknown = [h for h in header if h not in by_name]
    missing = [f.name for f in fields if f.required and f.name not in header]
    if unknown:
        errors.append(f"line 1: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(by_name)}.")
    if missing:
        errors.append(f"line 1: missing required column(s) {', '.join(missing)}.")
    if errors:
        return _errors_response(request, errors)
    rows: list[dict] = []
    try:
        for record in reader:
            line = reader.line_num
            if len(rows) >= settings.GENAI_WEB_MAX_CSV_ROWS:
                errors.append(f"line {line}: more than {settings.GENAI_WEB_MAX_CSV_ROWS} products (GENAI_WEB_MAX_CSV_ROWS); split the file.")
                break
            if None in record:
                errors.append(f"line {line}: more cells than columns.")
                continue
            cells = {k.strip(): v for k, v in record.items() if k is not None}
            if not any((v or "").strip() for v in cells.values()):
                continue
            params = {}
            for name, raw in cells.items():
                value = value_parse(by_name[name], raw)
                if value is not _EMPTY:
                    params[name] = value
            try:
                job_params_validate(kind=COPY_KIND, params=params)
            except InvalidInput as exc:
                errors.extend(f"line {line}: {message}" for message in error_messages(exc))
                continue
            rows.append(params)
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: not valid CSV ({exc}).")
    if not errors and not rows:
        errors.append("file: No product rows below the header.")
    if errors:
        return _errors_response(request, errors[: settings.GENAI_KB_MAX_REPORTED_ERRORS])
    try:
        with transaction.atomic():  # all rows or none
            jobs = [job_create(owner=request.user, kind=COPY_KIND, params=p)[0] for p in rows]
    except DomainError as exc:
        return _errors_response(request, error_messages(exc))
    return _to_batch(request, [str(j.id) for j in jobs])


def _batch_jobs(request: HttpRequest, batch_id: str) -> list[Job] | None:
    ids = request.session.get("copy_batches", {}).get(batch_id)
    if ids is None:
        return None
    visible = {str(j.id): j for j in job_selectors.job_list(user=request.user).filter(pk__in=ids)}
    return [visible[i] for i in ids if i in visible]


def _batch_context(request: HttpRequest, batch_id: str, jobs: list[Job]) -> dict:
    done = sum(1 for j in jobs if j.is_final)
    progress = sum(1.0 if j.is_final else j.progress for j in jobs) / len(jobs) if jobs else 1.0
    rows = []
    for job in jobs:
        cards = []
        for c in job.candidates.all():
            item = getattr(c, "review_item", None)
            checks = (c.metadata or {}).get("checks")
            cards.append({
                "c": c, "item": item, "checks": _checks(checks), "flagged": candidate_is_flagged(c.metadata),
                "flag_reasons": candidate_flag_reasons(c.metadata),
            })
        rows.append({"job": job, "cards": cards, "label": _product_label(job.params)})
    return {
        "batch_id": batch_id, "jobs": jobs, "rows": rows, "done": done, "total": len(jobs),
        "percent": round(100 * progress), "finished": done == len(jobs), "poll_ms": settings.GENAI_WEB_POLL_MS * 3,
    }


def _product_label(params: dict) -> str:
    attributes = params.get("attributes") if isinstance(params.get("attributes"), dict) else {}
    for source in (params, attributes):
        for key in ("name", "title", "product_name", "product"):
            if isinstance(source.get(key), str) and source[key].strip():
                return source[key].strip()[:120]
    return "Product"


def _checks(checks) -> list[dict]:
    """The attribute checker's marks, whatever their shape: ``{name: bool}``, ``{name: {ok, ...}}``
    or a list of ``{name, ok, detail}``."""
    if not checks:
        return []
    out = []
    items = checks.items() if isinstance(checks, dict) else ((c.get("name", "check"), c) for c in checks if isinstance(c, dict))
    for name, value in items:
        if isinstance(value, dict):
            ok = value.get("ok", value.get("passed", value.get("pass")))
            detail = value.get("detail") or value.get("message") or value.get("reason") or ""
        else:
            ok, detail = value, ""
        if isinstance(ok, (int, float)) and not isinstance(ok, bool):
            detail, ok = f"{ok:.2f}" if isinstance(ok, float) else str(ok), None
        out.append({"name": str(name).replace("_", " "), "ok": ok, "detail": str(detail)})
    return out


@role_required(*MARKETING_ROLES)
def batch_page(request: HttpRequest, batch_id: str) -> HttpResponse:
    jobs = _batch_jobs(request, batch_id)
    if jobs is None:
        return render(request, "web/partials/errors.html", {"errors": ["No such batch in this session."]}, status=404)
    template = "web/partials/batch.html" if request.htmx else "web/batch.html"
    return render(request, template, _batch_context(request, batch_id, jobs))


@require_POST
@role_required(*MARKETING_ROLES)
def copy_submit(request: HttpRequest, candidate_id: str) -> HttpResponse:
    errors, item = [], None
    try:
        candidate = selectors.candidate_get(user=request.user, candidate_id=candidate_id)
        text = request.POST.get("text")
        item = review_item_submit(candidate=candidate, user=request.user, text=text)
    except DomainError as exc:
        errors = error_messages(exc)
    return render(request, "web/partials/submit_result.html", {"item": item, "errors": errors})
