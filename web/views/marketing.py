"""The marketer's pages: a product form and a CSV upload that create ``copy`` jobs, a batch
progress bar, candidates side by side with the attribute checker's marks, submit for review."""

from __future__ import annotations

import csv
import io
import re
import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.fields import empty as _EMPTY

from generation import roles
from generation import selectors as job_selectors
from generation.exceptions import DomainError, InvalidInput
from generation.kinds import kind_get
from generation.models import Job
from generation.services.jobs import job_create, job_params_validate
from generation.text.sentences import sentences_split
from review import selectors
from review.services.reviews import review_item_submit
from review.services.safety import candidate_flag_reasons, candidate_is_flagged
from web.views.common import error_messages, role_required
from web.views.params_form import form_fields, params_from, value_parse

COPY_KIND = "copy"
MARKETING_ROLES = (roles.MARKETER,)
BATCHES_KEPT = 20


# Product attributes with their own inputs on the form (others go in "Other attributes");
# on a CSV every column that is not a parameter of the kind is an attribute.
ATTRIBUTE_KEYS = ("name", "brand", "category", "colour", "material", "price", "sizes", "features", "audience")
LIST_ATTRIBUTES = frozenset({"sizes", "features"})  # "S; M; L" -> ["S", "M", "L"]


def _copy_fields():
    """The kind, its non-attribute form fields, and whether it takes an ``attributes`` object."""
    kind = kind_get(COPY_KIND)
    if kind is None:
        return None, [], False
    fields = form_fields(kind.params_serializer)
    attribute_mode = any(f.name == "attributes" for f in fields)
    for f in fields:
        if f.name == "segments":
            f.widget, f.help_text = "lines", "Audience segments, one per line (each gets its own candidates)."
    return kind, [f for f in fields if f.name != "attributes"], attribute_mode


def _split(key: str, value: str):
    if key in LIST_ATTRIBUTES:
        items = [v.strip() for v in re.split(r"[;\n]", value) if v.strip()]
        return items if len(items) > 1 else value.strip()
    return value.strip()


def _attributes_from_form(data) -> dict:
    attributes = {}
    for key in ATTRIBUTE_KEYS:
        value = (data.get(f"attr_{key}") or "").strip()
        if value:
            attributes[key] = _split(key, value)
    for line in (data.get("attr_other") or "").splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            attributes[key.strip()] = _split(key.strip().lower(), value)
    return attributes


def _page_context(request: HttpRequest, **extra) -> dict:
    kind, fields, attribute_mode = _copy_fields()
    return {
        "kind": kind, "fields": fields, "attribute_mode": attribute_mode, "attribute_keys": ATTRIBUTE_KEYS,
        "values": {},
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
    kind, fields, attribute_mode = _copy_fields()
    if kind is None:
        return _errors_response(request, ["The copy job kind is not installed on this server."])
    params = params_from(fields, request.POST)
    if attribute_mode:
        params["attributes"] = _attributes_from_form(request.POST)
    try:
        job, _ = job_create(owner=request.user, kind=COPY_KIND, params=params)
    except DomainError as exc:
        return _errors_response(request, error_messages(exc), values=request.POST)
    return _to_batch(request, [str(job.id)])


@require_POST
@role_required(*MARKETING_ROLES)
def marketing_upload(request: HttpRequest) -> HttpResponse:
    """A CSV with one product per row. Columns: the copy kind's parameters (tone, length, n,
    ...) and, when the kind takes attributes, any other column is a product attribute (name,
    brand, colour, ...). Every row is checked first; nothing is created unless all rows are
    valid, and each error names its line."""
    kind, fields, attribute_mode = _copy_fields()
    if kind is None:
        return _errors_response(request, ["The copy job kind is not installed on this server."])
    upload = request.FILES.get("file")
    if upload is None:
        return _errors_response(request, ["file: Choose a CSV file to upload."])
    limit = settings.GENAI_WEB_MAX_CSV_BYTES
    if upload.size > limit:
        return _errors_response(
            request, [f"file: {upload.name} is {upload.size / 1024:.0f} KB; the limit is {limit / 1024:.0f} KB (GENAI_WEB_MAX_CSV_BYTES)."]
        )
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return _errors_response(request, ["file: Not UTF-8 text; save the sheet as CSV (UTF-8)."])
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        return _errors_response(request, [f"line 1: not valid CSV ({exc})."])
    if not any(header):
        return _errors_response(request, ["file: The CSV is empty; line 1 must name the columns."])
    by_name = {f.name: f for f in fields}
    errors = []
    blank = [str(i + 1) for i, h in enumerate(header) if not h]
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    if blank:
        errors.append(f"line 1: column(s) {', '.join(blank)} have no name.")
    if duplicated:
        errors.append(f"line 1: duplicated column(s) {', '.join(duplicated)}.")
    if attribute_mode:
        if not [h for h in header if h and h not in by_name]:
            errors.append(f"line 1: no attribute columns (such as {', '.join(ATTRIBUTE_KEYS[:5])}); "
                          f"parameter columns alone describe no product.")
    else:
        unknown = [h for h in header if h and h not in by_name]
        missing = [f.name for f in fields if f.required and f.name not in header]
        if unknown:
            errors.append(f"line 1: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(by_name)}.")
        if missing:
            errors.append(f"line 1: missing required column(s) {', '.join(missing)}.")
    if errors:
        return _errors_response(request, errors)
    rows: list[dict] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= settings.GENAI_WEB_MAX_CSV_ROWS:
                errors.append(f"line {line}: more than {settings.GENAI_WEB_MAX_CSV_ROWS} products (GENAI_WEB_MAX_CSV_ROWS); split the file.")
                break
            if len(cells) > len(header):
                errors.append(f"line {line}: {len(cells)} cells but {len(header)} columns.")
                continue
            params, attributes = {}, {}
            for name, raw in zip(header, cells):
                if name in by_name:
                    value = value_parse(by_name[name], raw)
                    if value is not _EMPTY:
                        params[name] = value
                elif raw.strip():
                    attributes[name] = _split(name.lower(), raw)
            if attribute_mode:
                params["attributes"] = attributes
            try:
                _, validated = job_params_validate(kind=COPY_KIND, params=params)
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
                "c": c, "item": item, "checks": checks_marks(checks), "flagged": candidate_is_flagged(c.metadata),
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


def _copy_check_marks(checks: dict) -> list[dict]:
    """The copy kind's attribute checker (generation.text.copycheck.CopyCheck.as_dict): overall
    verdict, each attribute covered or missing, unsupported claims, repeated phrases."""
    marks = []
    if "passed" in checks:
        coverage = checks.get("coverage")
        detail = f"coverage {coverage:.0%}" if isinstance(coverage, (int, float)) else ""
        marks.append({"name": "all checks", "ok": bool(checks["passed"]), "detail": detail})
    marks += [{"name": str(label), "ok": True, "detail": "mentioned"} for label in checks.get("covered") or []]
    marks += [{"name": str(label), "ok": False, "detail": "missing"} for label in checks.get("missing") or []]
    for claim in checks.get("unsupported") or []:
        text = ", ".join(f"{v}" for v in claim.values()) if isinstance(claim, dict) else str(claim)
        marks.append({"name": "unsupported claim", "ok": False, "detail": text})
    if checks.get("repetition"):
        marks.append({"name": "repetition", "ok": False, "detail": f"“{checks['repetition']}” repeated"})
    return marks


def checks_marks(checks) -> list[dict]:
    """The attribute checker's marks, whatever their shape: ``{name: bool}``, ``{name: {ok, ...}}``
    or a list of ``{name, ok, detail}``."""
    if not checks:
        return []
    if isinstance(checks, dict) and ("covered" in checks or "missing" in checks):
        return _copy_check_marks(checks)
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


VARIANTS_KIND = "variants"


def _first_sentence(text: str) -> str:
    """The first sentence of a candidate's description (the VAE models sentences); the title
    line of a copy candidate is skipped."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(("-", "•", "*"))]
    body = " ".join(lines[1:] if len(lines) > 1 else lines)
    return (sentences_split(body) or [""])[0][: settings.GENAI_REVIEW_MAX_COMMENT_CHARS]


@require_POST
@role_required(*MARKETING_ROLES)
def copy_variants(request: HttpRequest, candidate_id: str) -> HttpResponse:
    """Rewrites of a candidate's first sentence from the sentence VAE (the ``variants`` kind)."""
    errors, job = [], None
    if kind_get(VARIANTS_KIND) is None:
        errors = ["The variants job kind (VAE) is not installed on this server."]
    else:
        try:
            candidate = selectors.candidate_get(user=request.user, candidate_id=candidate_id)
            job, _ = job_create(owner=request.user, kind=VARIANTS_KIND, params={"text": _first_sentence(candidate.text), "k": 3})
        except DomainError as exc:
            errors = error_messages(exc)
    if errors:
        return render(request, "web/partials/errors.html", {"errors": errors})
    return _variants_render(request, job=job, candidate=candidate)


@role_required(*MARKETING_ROLES)
def variants_partial(request: HttpRequest, job_id: str) -> HttpResponse:
    try:
        job = job_selectors.job_get(user=request.user, job_id=job_id)
        candidate = selectors.candidate_get(user=request.user, candidate_id=request.GET.get("candidate", ""))
    except DomainError as exc:
        return render(request, "web/partials/errors.html", {"errors": [exc.message]}, status=404)
    return _variants_render(request, job=job, candidate=candidate)


def _variants_render(request: HttpRequest, *, job, candidate) -> HttpResponse:
    """The variants a marketer may use: fluent (GENAI_WEB_VARIANT_MAX_PERPLEXITY) and true to the
    product's attributes (the copy checker, strict); the others are counted, not shown."""
    from generation.text.copycheck import unsupported_claims

    shown, hidden = [], 0
    if job.status == "succeeded":
        attributes = (candidate.job.params or {}).get("attributes") or {}
        for variant in job.candidates.all():
            meta = variant.metadata or {}
            fluent = (meta.get("perplexity") or float("inf")) <= settings.GENAI_WEB_VARIANT_MAX_PERPLEXITY
            true = not attributes or not unsupported_claims(variant.text, attributes)
            if fluent and true and not (meta.get("safety") or {}).get("flagged"):
                shown.append(variant)
            else:
                hidden += 1
    return render(request, "web/partials/variants.html", {
        "job": job, "candidate": candidate, "variants": shown, "hidden": hidden,
        "poll_ms": settings.GENAI_WEB_POLL_MS * 3,
    })
