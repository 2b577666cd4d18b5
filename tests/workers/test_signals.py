import subprocess
import sys

# A fresh interpreter: in the test process the lazy names are long resolved by other tests.
PROBE = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.test")
django.setup()
import transformers
assert "AutoModel" not in vars(transformers), "resolved before the worker started"
from workers.signals import LAZY_NAMES, lazy_imports_resolve
lazy_imports_resolve()
import importlib
missing = [f"{m}.{n}" for m, names in LAZY_NAMES.items() for n in names if n not in vars(importlib.import_module(m))]
assert not missing, missing
print("resolved")
"""


def test_worker_start_resolves_the_lazy_imports_that_threads_raced():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resolved" in result.stdout


def test_a_broken_connection_is_dropped_between_tasks_and_a_healthy_one_kept(transactional_db):
    from django.db import connection

    from workers.signals import db_connections_drop_unusable

    connection.close()  # a connection of this test's own, well inside its CONN_MAX_AGE
    connection.ensure_connection()
    connection.close_at = None  # as with a persistent connection (CONN_MAX_AGE=None)
    healthy = connection.connection
    db_connections_drop_unusable()
    assert connection.connection is healthy  # reuse: no reconnect per task
    connection.connection.close()  # what a database restart does to the socket
    connection.errors_occurred = True  # as Django marks it when a query fails
    db_connections_drop_unusable()
    assert connection.connection is None  # the next task's first query reconnects
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


# A fresh interpreter: torch's thread counts are per thread and per process.
THREADS_PROBE = """
import os, sys, threading, django
os.environ["DJANGO_SETTINGS_MODULE"] = "genai_site.settings.test"
os.environ.update(GENAI_TORCH_THREADS="2", GENAI_ENGINE="batched", GENAI_DEVICE="cpu")
django.setup()
import torch
from workers.signals import _task_prerun, torch_threads_plan

assert not torch_threads_plan(consumed={"train"}), "a trainer keeps every thread's count"
assert torch_threads_plan(consumed={"gpu", "cpu"}), "the LM worker isolates its engine thread"
seen = {}

def task():  # a task thread as Celery runs one: the prerun hook, then the job loads the LM and drafts
    _task_prerun(sender=None)
    from workers.ml.decoding import SamplingParams
    from workers.runtime.models import lm_get

    lm = lm_get(sys.argv[1])
    lm.engine._on_step = lambda *args: seen.setdefault("engine", torch.get_num_threads())
    lm.engine.submit([1, 2, 3], SamplingParams(max_new_tokens=3, temperature=0.0)).result()
    seen["task"] = torch.get_num_threads()

thread = threading.Thread(target=task)
thread.start()
thread.join()
print(seen)
"""


def test_a_cpu_lm_worker_leaves_the_engine_thread_the_only_multithreaded_torch_user(tiny_lm):
    result = subprocess.run([sys.executable, "-c", THREADS_PROBE, str(tiny_lm)], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "{'engine': 2, 'task': 1}" in result.stdout
