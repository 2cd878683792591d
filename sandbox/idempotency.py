"""Idempotency keys, honoured the way real providers honour them.

- the same key with the same parameters replays the stored answer (same
  status, same body, header ``Idempotent-Replayed: true``);
- the same key with other parameters is refused with 422
  ``idempotency_key_reused``;
- a second request while the first with that key is still being processed
  gets 409 ``idempotency_key_in_use``.

Requests refused before the key is claimed (bad JSON, a missing field) are
not stored: fixing the request and sending it again with the key works.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone

from sandbox.models import SandboxIdempotencyKey

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    # Seconds to wait before answering, with the key still in flight.
    delay: float = 0


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def fingerprint(*, method: str, path: str, params: dict) -> str:
    text = json.dumps(
        {"method": method, "path": path, "params": params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent(
    *, key: str, method: str, path: str, params: dict, handle: Callable[[], Answer]
) -> JsonResponse:
    """Answer a mutating request at most once per key.

    1. Claim the key: insert it in flight, committed at once, so that
       concurrent requests with that key see it (the unique index makes
       the second insert fail).
    2. If it was taken: other parameters -> 422; still in flight -> 409
       (unless the holder is long gone, then take it over); otherwise
       replay the stored answer.
    3. Run ``handle``, wait its delay with the key still in flight, store
       its answer and mark the key done. If ``handle`` raises, the key is
       released so that a retry runs afresh.
    """
    digest = fingerprint(method=method, path=path, params=params)
    claimed = _claim(key, digest)
    if isinstance(claimed, JsonResponse):
        return claimed

    try:
        answer = handle()
    except Exception:
        SandboxIdempotencyKey.objects.filter(pk=claimed.pk).delete()
        raise
    if answer.delay:
        log.info("sandbox.slow_answer", key=key, delay=answer.delay)
        time.sleep(answer.delay)

    # An UPDATE, never save(): save() would insert the row again if it was
    # removed meanwhile.
    SandboxIdempotencyKey.objects.filter(pk=claimed.pk).update(
        state=SandboxIdempotencyKey.State.DONE,
        status_code=answer.status,
        response=answer.body,
        finished_at=timezone.now(),
    )
    return JsonResponse(answer.body, status=answer.status)


def _claim(key: str, digest: str) -> SandboxIdempotencyKey | JsonResponse:
    try:
        with transaction.atomic():
            return SandboxIdempotencyKey.objects.create(key=key, fingerprint=digest)
    except IntegrityError:
        pass

    stored = SandboxIdempotencyKey.objects.get(key=key)
    if stored.fingerprint != digest:
        return JsonResponse(
            error_body(
                "idempotency_key_reused",
                "this key was used with other parameters",
            ),
            status=422,
        )
    if stored.state == SandboxIdempotencyKey.State.DONE:
        response = JsonResponse(stored.response, status=stored.status_code)
        response["Idempotent-Replayed"] = "true"
        return response

    # A holder that has been in flight for longer than any answer takes
    # died; the first request to notice takes the key over.
    abandoned = timezone.now() - timedelta(
        seconds=settings.SANDBOX_TIMEOUT_SECONDS + 60
    )
    taken_over = SandboxIdempotencyKey.objects.filter(
        pk=stored.pk,
        state=SandboxIdempotencyKey.State.IN_FLIGHT,
        created_at__lt=abandoned,
    ).update(created_at=timezone.now())
    if taken_over:
        stored.refresh_from_db()
        return stored
    return JsonResponse(
        error_body(
            "idempotency_key_in_use",
            "a request with this key is still being processed",
        ),
        status=409,
    )
