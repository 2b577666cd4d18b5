"""Worker process hooks: choose the device at start, drop broken database connections around
every task, beat a WorkerHeartbeat row that /readyz and the metrics read, and hand unfinished
jobs back when the worker is told to shut down."""

import logging
import os
import sys
import threading

from celery import signals

from generation.db import db_connections_drop_unusable

logger = logging.getLogger(__name__)
_stop = threading.Event()


@signals.worker_init.connect
def _worker_init(sender=None, **kwargs) -> None:
    """Refuse to start on a device setting that cannot work, before taking any job."""
    from workers.runtime.device import DeviceSettingError, device_get

    try:
        device_get()
    except DeviceSettingError as exc:
        # Celery logs and swallows exceptions raised by signal handlers: exit explicitly.
        logger.critical("cannot start worker: %s", exc)
        sys.stderr.write(f"cannot start worker: {exc}\n")
        sys.stderr.flush()
        os._exit(2)
    torch_threads_plan(consumed=set(getattr(sender.app.amqp.queues, "consume_from", None) or ()))
    lazy_imports_resolve()


def torch_threads_plan(*, consumed: set[str]) -> bool:
    """A worker that serves the LM (the ``gpu`` queue) on CPU with the engine (not sequential) keeps the
    engine thread the process's only multi-threaded torch user (``workers.runtime.device``);
    True if it does."""
    import torch
    from django.conf import settings

    from workers.runtime.device import device_get, torch_threads_isolate

    if not settings.GENAI_ENGINE_THREAD_ISOLATION or settings.GENAI_ENGINE == "sequential" or "gpu" not in consumed:
        return False
    if getattr(device_get().device, "type", "cpu") != "cpu":
        return False
    threads = settings.GENAI_TORCH_THREADS or torch.get_num_threads()
    torch_threads_isolate(threads)
    logger.info("torch threads: %d for the engine thread, 1 for every other thread", threads)
    return True


# transformers, sentence-transformers and peft import their parts lazily, and that is not
# thread-safe: jobs that start together on the worker's thread pool raced it (a sentiment training
# failed with "cannot import name 'AutoModel' from 'transformers'" while an intent training
# started). Resolving the names once at start-up, before any job, takes the race away.
LAZY_NAMES = {
    "transformers": ("AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoTokenizer", "PreTrainedModel"),
    "peft": ("LoraConfig", "PeftModel", "get_peft_model"),
    "sentence_transformers": ("SentenceTransformer",),
}


def lazy_imports_resolve() -> None:
    import importlib

    for module_name, names in LAZY_NAMES.items():
        module = importlib.import_module(module_name)
        for name in names:
            getattr(module, name)


@signals.worker_ready.connect
def _worker_ready(sender, **kwargs) -> None:
    from django.conf import settings

    from generation.services.workers import worker_beat
    from workers.runtime.device import device_get

    name = sender.hostname
    queues = ",".join(sorted(q.name for q in sender.app.amqp.queues.consume_from.values()))
    device = device_get()
    logger.info(
        "worker %s ready: queues %s, device %s (%s, %s weights)", name, queues, device.device, device.dtype_name,
        device.weights,
    )

    def beat() -> None:
        from django.db import connection

        while True:
            try:
                worker_beat(name=name, queues=queues, device=f"{device.device}/{device.dtype_name}", pid=os.getpid())
            except Exception:  # noqa: BLE001 - keep beating through database blips
                logger.exception("worker heartbeat failed")
            finally:
                connection.close()
            if _stop.wait(settings.GENAI_WORKER_HEARTBEAT_SECONDS):
                return

    threading.Thread(target=beat, name="worker-heartbeat", daemon=True).start()


@signals.task_prerun.connect
def _task_prerun(sender=None, **kwargs) -> None:
    from workers.runtime.device import torch_threads_isolated, torch_threads_single

    if torch_threads_isolated():  # the engine thread is the process's only OpenMP team
        torch_threads_single()
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        db_connections_drop_unusable()


@signals.task_postrun.connect
def _task_postrun(sender=None, **kwargs) -> None:
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        db_connections_drop_unusable()


@signals.worker_shutting_down.connect
def _worker_shutting_down(sender=None, how=None, **kwargs) -> None:
    """SIGTERM (Kubernetes scaling in, a rollout, `docker stop`) starts Celery's warm shutdown: no
    new messages, and the pool waits for the running tasks. Those get
    GENAI_WORKER_SHUTDOWN_FINISH_SECONDS to finish; jobs still running then stop and are handed
    back to the queue, so the process exits within the pod's grace period and loses no job. A
    cold shutdown (SIGQUIT, a second Ctrl+C) hands them back at once. Runs inside the signal
    handler: it only sets a deadline (no logging, no database)."""
    from django.conf import settings

    from generation.services.jobs import jobs_hand_back_after

    jobs_hand_back_after(settings.GENAI_WORKER_SHUTDOWN_FINISH_SECONDS if how == "Warm" else 0.0)


@signals.worker_shutdown.connect
def _worker_shutdown(sender, **kwargs) -> None:
    from generation.services.workers import worker_gone

    _stop.set()
    try:
        worker_gone(name=sender.hostname)
    except Exception:  # noqa: BLE001 - shutting down anyway
        logger.exception("could not remove worker heartbeat")
