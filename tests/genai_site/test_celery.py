import subprocess
import sys

import pytest
from amqp.exceptions import ChannelError

from genai_site.celery import app


def _depth(queue: str) -> int:
    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue, passive=True).message_count
        except ChannelError:  # Redis keeps no key for an empty queue
            return 0


def test_a_message_for_one_queue_lands_only_in_that_queue():
    app.control.purge()
    with app.connection_for_write() as conn:
        for queue in app.conf.task_queues:
            queue(conn.default_channel).declare()
    app.send_task("workers.tasks.ping", queue="train")
    try:
        assert {q: _depth(q) for q in ("gpu", "cpu", "train")} == {"gpu": 0, "cpu": 0, "train": 1}
    finally:
        app.control.purge()


def test_task_settings_protect_against_lost_work():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_ignore_result


@pytest.mark.parametrize(
    ("env", "message"),
    [({}, "DJANGO_SECRET_KEY must be set"), ({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off")],
)
def test_production_settings_refuse_unsafe_configuration(env, message):
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "genai_site.settings.production", **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr
