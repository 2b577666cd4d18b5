"""Operations endpoints: /healthz (alive), /readyz (can serve jobs), /metrics (Prometheus).

With ``GENAI_OPS_TOKEN`` set, /metrics and the details of /readyz (which parts fail, worker
names) need ``Authorization: Bearer <token>`` or a client address in ``GENAI_OPS_ALLOWED_NETWORKS``;
/readyz still answers its status (and 200/503) to anyone, for load balancers. /healthz stays open.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from generation.metrics import metrics_render
from generation.services.workers import workers_alive

logger = logging.getLogger(__name__)


def ops_authorized(request: HttpRequest) -> bool:
    token = settings.GENAI_OPS_TOKEN
    if not token:
        return True
    if hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in ipaddress.ip_network(net, strict=False) for net in settings.GENAI_OPS_ALLOWED_NETWORKS if net)


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
    """Database, broker and a live worker. Worker heartbeats live in the database: with the database
    failing, the worker check is not run (it would wait out the connection pool's timeout a second
    time, 10 s against a probe's 5)."""
    checks, ready = {}, True
    for name, check in (("database", _check_database), ("broker", _check_broker), ("worker", _check_worker)):
        if name == "worker" and checks["database"] != "ok":
            checks[name] = "not checked: the database is failing"
            continue
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - report whichever part fails
            ready = False
            checks[name] = f"failing: {exc}"
            logger.warning("readiness check %s failing: %s", name, exc)
    body = {"status": "ready" if ready else "unavailable"}
    if ops_authorized(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not ops_authorized(request):
        response = JsonResponse({"code": "not_authenticated", "detail": "GENAI_OPS_TOKEN is set: send it as a Bearer token.",
                                 "error": {"code": "not_authenticated", "message": "Bearer token required."}}, status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)
