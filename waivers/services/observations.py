"""Recording what the declared secrets look like; a new value is a rotation."""

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from django.db import transaction
from django.utils import timezone

from security.audit import audit_record
from waivers.fingerprints import fingerprint_key
from waivers.inspection import Inspection, secrets_inspect
from waivers.models import SecretObservation, SecretRotation

log = structlog.get_logger(__name__)


@dataclass
class ObservationReport:
    observed: int = 0
    first_seen: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    rekeyed: list[str] = field(default_factory=list)


def secrets_observe(
    *,
    source: str,
    now: datetime | None = None,
    inspections: list[Inspection] | None = None,
) -> ObservationReport:
    """Record each declared secret as this process sees it; a new value is a rotation.

    Per secret, in a transaction of its own:

    1. Lock its observation row, creating it on first sight (the unique name
       makes a concurrent first sighting wait for this one, then find it).
    2. Compare the fingerprint with the stored one, when both were made with
       the same key: another fingerprint is a rotation, recorded with its
       time (SecretRotation, audit entry) and restarting the rotation clock.
       A fingerprint made with another key cannot be compared: it is
       re-keyed and the clock keeps running, except for the secret the key
       comes from, whose change is what changed the key.
    3. Save the status, fingerprint and time.

    The task and the gate may run it at once, and run it twice: each change
    is recorded once, by whichever locks the row first.
    """
    now = now or timezone.now()
    key = fingerprint_key()
    report = ObservationReport()
    for inspection in inspections or secrets_inspect():
        with transaction.atomic():
            _observe_one(inspection, key=key, now=now, source=source, report=report)
        report.observed += 1
    if report.rekeyed:
        audit_record(
            actor=None,
            action="secret.fingerprints_rekeyed",
            after={"key_source": key.source, "secrets": report.rekeyed},
            reason=source,
        )
    return report


def _observe_one(inspection, *, key, now, source, report) -> None:
    name = inspection.spec.name
    observation, created = SecretObservation.objects.select_for_update().get_or_create(
        name=name,
        defaults={
            "status": inspection.status,
            "fingerprint": inspection.fingerprint,
            "key_id": key.key_id if inspection.present else "",
            "key_source": key.source if inspection.present else "",
            "value_since": now if inspection.present else None,
            "first_observed_at": now,
            "last_observed_at": now,
        },
    )
    if created:
        report.first_seen.append(name)
        return

    observation.status = inspection.status
    observation.last_observed_at = now
    if inspection.present:
        same_key = observation.key_id == key.key_id
        own_key_changed = (
            not same_key
            and observation.key_source == key.source
            and name == key.source
            and bool(observation.fingerprint)
        )
        if (
            not observation.fingerprint
            or (same_key and observation.fingerprint != inspection.fingerprint)
            or own_key_changed
        ):
            _rotation_record(observation, inspection, now=now, source=source)
            report.rotated.append(name)
        elif not same_key:
            report.rekeyed.append(name)
        observation.fingerprint = inspection.fingerprint
        observation.key_id = key.key_id
        observation.key_source = key.source
    observation.save()


def _rotation_record(observation, inspection, *, now, source) -> None:
    """The value changed (or appeared where there was none): record it."""
    SecretRotation.objects.create(
        name=observation.name,
        detected_at=now,
        previous_fingerprint=observation.fingerprint,
        fingerprint=inspection.fingerprint,
        source=source,
    )
    observation.value_since = now
    observation.value_since_known = True
    audit_record(
        actor=None,
        action="secret.rotated" if observation.fingerprint else "secret.set",
        after={"secret": observation.name, "observed_by": source},
        reason=source,
    )
    log.info("secret.rotated", secret=observation.name, observed_by=source)
