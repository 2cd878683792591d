"""The tamper-evident audit log: the one way to write it and to check it.

Other apps record their security-relevant events with ``audit_record``::

    from security.audit import audit_record

    audit_record(
        actor=request.user,
        action="override.approved",
        target=override,
        before={"state": "requested"},
        after={"state": "approved"},
        request=request,
        reason=form.cleaned_data["reason"],
    )

``action`` is a dotted event name (``<area>.<verb>``). ``before``/``after``
are JSON-serialisable dicts (dates and decimals become strings). Never pass
secrets, codes or full account numbers.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC

import structlog
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from security.models import AuditEntry
from security.net import client_ip

log = structlog.get_logger(__name__)

GENESIS_HASH = "0" * 64
# Key of the PostgreSQL advisory lock that serialises appends ("audit" in hex).
_APPEND_LOCK_KEY = 0x6175646974


def _plain_json(value):
    """The value exactly as the JSON column will give it back."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def entry_digest(entry: AuditEntry) -> str:
    """SHA-256 over the canonical JSON of the entry, its predecessor's hash included."""
    canonical = {
        "created_at": entry.created_at.astimezone(UTC).isoformat(
            timespec="microseconds"
        ),
        "actor_id": entry.actor_id,
        "actor_username": entry.actor_username,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_repr": entry.target_repr,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "ip": entry.ip,
        "request_id": entry.request_id,
        "previous_hash": entry.previous_hash,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _actor(actor):
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    return actor


def _request_id(request) -> str:
    if request is not None and getattr(request, "request_id", None):
        return request.request_id
    context = structlog.contextvars.get_contextvars()
    return str(context.get("request_id") or context.get("task_id") or "")[:64]


def audit_record(
    *,
    actor,
    action: str,
    target=None,
    before: dict | None = None,
    after: dict | None = None,
    request=None,
    reason: str = "",
) -> AuditEntry:
    """Append one entry to the audit log and return it.

    Runs in the caller's transaction when there is one, so the entry commits
    or rolls back with the change it describes.

    1. Take a transaction-scoped advisory lock (PostgreSQL; SQLite takes its
       write lock when the transaction begins): appends queue here, one at a
       time, until the appending transaction ends.
    2. Read the newest entry's hash, the head of the chain.
    3. Insert the entry with that hash as ``previous_hash`` and the digest of
       its own canonical form as ``entry_hash``.
    The unique ``previous_hash`` makes the database refuse a fork should
    anything append without the lock.
    """
    actor = _actor(actor)
    entry = AuditEntry(
        actor=actor,
        actor_username=actor.get_username() if actor else "",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        before=_plain_json(before),
        after=_plain_json(after),
        reason=reason,
        ip=client_ip(request) if request is not None else "",
        request_id=_request_id(request),
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_APPEND_LOCK_KEY])
        head = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True)
        entry.previous_hash = head.first() or GENESIS_HASH
        entry.entry_hash = entry_digest(entry)
        entry.save(force_insert=True)
    log.info(
        "audit.recorded",
        audit_id=entry.pk,
        action=action,
        actor=entry.actor_username,
        target_type=entry.target_type,
        target_id=entry.target_id,
    )
    return entry


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_hash: str
    broken_entry_id: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_entry_id is None


def audit_chain_verify() -> ChainReport:
    """Walk the log oldest first; stop at the first entry that does not hold.

    An entry fails when its stored hash is not the digest of its content
    (edited), or when its ``previous_hash`` is not the hash of the entry
    before it (an entry in between was removed or reordered).
    """
    expected_previous = GENESIS_HASH
    checked = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != expected_previous:
            return ChainReport(
                checked,
                expected_previous,
                entry.pk,
                "its previous_hash does not match the entry before it",
            )
        if entry_digest(entry) != entry.entry_hash:
            return ChainReport(
                checked,
                expected_previous,
                entry.pk,
                "its content no longer matches its hash",
            )
        expected_previous = entry.entry_hash
        checked += 1
    return ChainReport(checked, expected_previous)
