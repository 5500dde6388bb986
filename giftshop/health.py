"""Whether this deployment can serve: the readiness checks. Each app registers its own in settings.HEALTH_CHECKS
(dotted paths, read with import_string, so this plumbing imports none of the apps); each returns
(ok, detail) and must be cheap, as load balancers and orchestrators ask often."""

import time
from functools import cache

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils.module_loading import import_string


def database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True, "answers"


_migrated = set()  # databases found fully migrated: a running process's code never gains migrations


def migrations():
    """Every migration of this code is applied (loading the migration graph takes ~30 ms: once found applied, the
    answer is kept for the process's life)."""
    if connection.alias in _migrated:
        return True, "applied"
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not pending:
        _migrated.add(connection.alias)
    return not pending, f"{len(pending)} migration(s) not applied" if pending else "applied"


def cache_reachable():
    """The cache (Redis in production: attempt limits, locks, the send schedule) answers a write and a read."""
    key = "health:probe"
    caches["default"].set(key, "1", timeout=10)
    return caches["default"].get(key) == "1", "answers"


@cache
def _check(path):
    return import_string(path)


def readiness(only=None):
    """{check name: {"ok": bool, "detail": str, "ms": float}} for every check in settings.HEALTH_CHECKS (or those
    named in `only`); a check that raises is not ok, with the error as its detail."""
    results = {}
    for name, path in settings.HEALTH_CHECKS.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        try:
            ok, detail = _check(path)()
        except Exception as error:
            ok, detail = False, f"{type(error).__name__}: {error}"[:300]
        results[name] = {"ok": bool(ok), "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return results
