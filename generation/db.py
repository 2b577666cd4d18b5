"""Database connections kept healthy without a reconnect per unit of work (worker tasks, a job's
release after a database error), and given back to their pool while a thread waits."""

import logging

from django.db import DatabaseError, InterfaceError, connections

logger = logging.getLogger(__name__)


def db_connections_drop_unusable() -> None:
    """Close this thread's database connections that are broken or past CONN_MAX_AGE, as Django
    does around every HTTP request.

    Celery's Django fixup does the same around each task only when ``CELERY_DB_REUSE_MAX`` is
    unset, and then by closing every connection, which costs a reconnect per task (about half a
    trivial job's worker time, bench/pipeline.py). With reuse on, a connection broken by a
    database restart stayed in its pool thread and failed every later task until the worker was
    restarted. ``close_if_unusable_or_obsolete`` closes only a connection that saw an error and
    fails its check, or is too old; and with ``CONN_HEALTH_CHECKS`` the task's first query checks
    the connection it inherits (one ``SELECT 1``) and reconnects when the database restarted
    while the thread was idle."""
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:  # a caller's transaction stays (tests run jobs inside one)
            continue
        try:
            conn.close_if_unusable_or_obsolete()
        except (DatabaseError, InterfaceError):  # closing a dead connection may itself complain
            logger.debug("closing an unusable %s connection failed", conn.alias, exc_info=True)


def db_connections_release() -> None:
    """Give this thread's pooled connections back to their pool (``GENAI_DB_POOL_MAX``) before a
    wait that needs none: a follower between polls, a shared executor thread between calls. An
    idle thread then holds no connection, so a process's open streams and long waits share the
    pool's few. Without a pool (SQLite, ``GENAI_DB_POOL_MAX=0``) a close would cost a reconnect
    per poll, and a connection inside a transaction must stay: both are left as they are."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.in_atomic_block or getattr(conn, "pool", None) is None:
            continue
        try:
            conn.close()
        except (DatabaseError, InterfaceError):  # the pool discards a broken connection itself
            logger.debug("returning a %s connection to its pool failed", conn.alias, exc_info=True)
