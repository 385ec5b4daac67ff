"""Dependency probes for /health/: each answers True or False and logs why it failed."""

import logging
from collections.abc import Callable

from django.db import connection
from django_redis import get_redis_connection

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    get_redis_connection("default").ping()


PROBES: dict[str, Callable[[], None]] = {"database": _database, "redis": _redis}


def health_checks() -> dict[str, bool]:
    """Run every probe; the details of a failure go to the log, never to the caller."""
    results = {}
    for name, probe in PROBES.items():
        try:
            probe()
        except Exception:
            logger.exception("Health check %s failed", name)
            results[name] = False
        else:
            results[name] = True
    if not results["database"]:
        # Drop the broken connection so the next probe opens a fresh one.
        connection.close()
    return results
