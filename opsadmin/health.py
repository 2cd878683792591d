"""Probes for load balancers and Kubernetes.

``/healthz`` says the process answers; ``/readyz`` says it can do its work:
the database and Redis answer and every migration is applied.
"""

import time

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse

# Loading the migration graph costs tens of milliseconds; once everything is
# applied, a running process cannot gain unapplied migrations except by a
# rollback of the schema, which a short cache still notices.
_MIGRATIONS_OK_FOR_SECONDS = 30
_migrations_ok_until = 0.0


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database: {type(exc).__name__}"
    return None


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        client.ping()
    except redis.RedisError as exc:
        return f"redis: {type(exc).__name__}"
    return None


def _check_migrations() -> str | None:
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return None
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return f"migrations: {type(exc).__name__}"
    if plan:
        return f"migrations: {len(plan)} not applied"
    _migrations_ok_until = time.monotonic() + _MIGRATIONS_OK_FOR_SECONDS
    return None


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    problems = [
        problem
        for problem in (_check_database(), _check_redis(), _check_migrations())
        if problem
    ]
    status = 503 if problems else 200
    return JsonResponse(
        {"status": "unavailable" if problems else "ok", "problems": problems},
        status=status,
    )
