from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from generation.models import WorkerHeartbeat


def worker_beat(*, name: str, queues: str, device: str, pid: int) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        name=name,
        defaults={"queues": queues, "device": device, "pid": pid, "last_seen_at": now},
        create_defaults={"queues": queues, "device": device, "pid": pid, "last_seen_at": now, "started_at": now},
    )


def worker_gone(*, name: str) -> None:
    WorkerHeartbeat.objects.filter(name=name).delete()


def workers_alive() -> list[WorkerHeartbeat]:
    fresh = timezone.now() - timedelta(seconds=settings.GENAI_WORKER_STALE_SECONDS)
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=fresh))
