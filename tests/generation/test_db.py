"""A thread gives its pooled connection back before it waits; a transaction's connection, and a
connection that has no pool (SQLite, GENAI_DB_POOL_MAX=0), stay."""

import pytest
from django.db import connection, transaction

from generation.db import db_connections_release
from generation.models import Job
from tests.factories import JobFactory

pooled = pytest.mark.skipif(
    not connection.settings_dict["OPTIONS"].get("pool"), reason="needs PostgreSQL with its pool (GENAI_DB_POOL_MAX)"
)


def _checked_out() -> int:
    stats = connection.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pooled
@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_goes_back_to_its_pool():
    db_connections_release()
    others = _checked_out()  # held by other threads of the process (earlier tests' servers and pools)
    JobFactory()
    assert connection.connection is not None and _checked_out() == others + 1
    db_connections_release()
    assert connection.connection is None and _checked_out() == others
    assert Job.objects.count() == 1  # the next query takes one again
    assert _checked_out() == others + 1


@pooled
@pytest.mark.django_db(transaction=True)
def test_a_connection_inside_a_transaction_stays():
    with transaction.atomic():
        job = JobFactory()
        db_connections_release()
        assert connection.connection is not None
        job.refresh_from_db()  # still usable: the transaction goes on
    assert Job.objects.filter(pk=job.pk).exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's connection has no pool")
@pytest.mark.django_db(transaction=True)
def test_a_connection_without_a_pool_stays():
    JobFactory()
    db_connections_release()
    assert connection.connection is not None
