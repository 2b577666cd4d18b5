"""Operations endpoints: /healthz (alive), /readyz (can serve jobs), /metrics (Prometheus)."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from generation.metrics import metrics_render
from generation.services.workers import workers_alive

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker() -> str:
    from genai_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _check_worker() -> str:
    alive = workers_alive()
    if not alive:
        raise RuntimeError(f"no worker heartbeat in the last {settings.GENAI_WORKER_STALE_SECONDS:g} s")
    return f"ok: {len(alive)} alive ({', '.join(sorted(w.name for w in alive))})"


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks, ready = {}, True
    for name, check in (("database", _check_database), ("broker", _check_broker), ("worker", _check_worker)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - report whichever part fails
            ready = False
            checks[name] = f"failing: {exc}"
            logger.warning("readiness check %s failing: %s", name, exc)
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)
