"""Declaring and running an incident: every change leaves a timeline entry.

For other apps (a failing job, later SLO burn alerts)::

    from incidents.services import incident_declare

    incident = incident_declare(
        title="Payouts stuck for 3 hours",
        level=2,                       # or severity=<Severity>
        source="slo",
        source_key="slo:payout-latency",  # one open incident per key
        summary="...",
    )
"""

from datetime import datetime

import structlog
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.channels import Message
from alerts.services import notify
from incidents.models import (
    Incident,
    IncidentLink,
    Review,
    RollbackAuthority,
    Severity,
    TimelineEntry,
)
from incidents.selectors import contact_reach, incident_url, oncall_person
from incidents.services.paging import (
    incident_page_cancel,
    incident_page_refreeze,
    page_start,
)
from security.audit import audit_record
from security.roles import INCIDENT_COMMANDER

log = structlog.get_logger(__name__)

Status = Incident.Status
Kind = TimelineEntry.Kind

_STATUS_TIMES: dict[str, str] = {
    Status.IDENTIFIED: "identified_at",
    Status.MITIGATED: "mitigated_at",
    Status.RESOLVED: "resolved_at",
}


class IncidentError(Exception):
    """A change to an incident that is refused, with the reason."""


def _name(user) -> str:
    return user.get_username() if user is not None else "system"


def _entry(incident, kind, text, *, actor=None, actor_name="", at=None, **details):
    return TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        text=text,
        actor=actor,
        actor_name=actor_name or _name(actor),
        at=at or timezone.now(),
        details=details,
    )


def _locked(incident_id: int) -> Incident:
    # FOR NO KEY UPDATE: the escalation pass, holding a page's lock, inserts
    # timeline rows that take a key-share lock on the incident; a plain
    # FOR UPDATE here would deadlock with it.
    return (
        Incident.objects.select_for_update(no_key=True, of=("self",))
        .select_related("severity", "commander")
        .get(pk=incident_id)
    )


def _severity(severity: Severity | None, level: int | None) -> Severity:
    if severity is not None:
        return severity
    if level is None:
        raise IncidentError("give a severity or its level")
    try:
        return Severity.objects.get(level=level)
    except Severity.DoesNotExist:
        raise IncidentError(f"there is no severity of level {level}") from None


def _inform(incident: Incident, event: str) -> None:
    """Tell the severity's "who must be told" list by e-mail, if it has one."""
    addresses = incident.severity.inform_email
    if not addresses:
        return
    notify(
        channel="email",
        target=addresses,
        message=Message(
            summary=f"{incident.severity.name} incident #{incident.pk} {event}: "
            f"{incident.title}",
            severity=incident.severity.alert_severity,
            source="opsadmin incidents",
            key=f"incident.{incident.pk}",
            action="notify",
            component="incidents",
            details={
                "status": incident.get_status_display(),
                "commander": _name(incident.commander) if incident.commander else "",
                "incident": incident_url(incident),
            },
            timestamp=timezone.now().isoformat(),
        ),
    )


def incident_declare(
    *,
    title: str,
    severity: Severity | None = None,
    level: int | None = None,
    summary: str = "",
    customer_impact: str = "",
    commander=None,
    declared_by=None,
    source: str = Incident.Source.PERSON,
    source_key: str = "",
    now: datetime | None = None,
) -> Incident:
    """Declare an incident and start paging by its severity's policy.

    Without a commander, the on-call Incident commander takes it (or the
    person declaring it when nobody is on call). With a ``source_key`` an
    incident already open for it is returned instead, with a timeline
    entry saying it happened again.
    """
    now = now or timezone.now()
    severity = _severity(severity, level)
    try:
        with transaction.atomic():
            return _declare(
                title=title,
                severity=severity,
                summary=summary,
                customer_impact=customer_impact,
                commander=commander,
                declared_by=declared_by,
                source=source,
                source_key=source_key,
                now=now,
            )
    except IntegrityError:
        if not source_key:
            raise
        # Another process declared the same source between our read and
        # insert: it is open now, so this one becomes a repeat.
        with transaction.atomic():
            return _declare(
                title=title,
                severity=severity,
                summary=summary,
                customer_impact=customer_impact,
                commander=commander,
                declared_by=declared_by,
                source=source,
                source_key=source_key,
                now=now,
            )


def _declare(*, severity, source_key, now, declared_by, **fields) -> Incident:
    if source_key:
        open_one = (
            Incident.objects.select_for_update(no_key=True)
            .filter(source_key=source_key)
            .exclude(status=Status.RESOLVED)
            .first()
        )
        if open_one is not None:
            _entry(
                open_one,
                Kind.UPDATE,
                f"Happened again: {fields['title']}",
                actor=declared_by,
                actor_name=source_key if declared_by is None else "",
                at=now,
            )
            return open_one

    commander = fields.pop("commander") or oncall_person(
        role=INCIDENT_COMMANDER, at=now
    )
    commander = commander or declared_by
    incident = Incident.objects.create(
        severity=severity,
        source_key=source_key,
        declared_by=declared_by,
        declared_at=now,
        last_update_at=now,
        commander=commander,
        **fields,
    )
    who = _name(declared_by) if declared_by else source_key or "system"
    _entry(
        incident,
        Kind.DECLARED,
        f"Declared {severity.name} by {who}"
        + (f"; commander {_name(commander)}" if commander else "; no commander yet")
        + ".",
        actor=declared_by,
        actor_name=who,
        at=now,
        source=incident.source,
    )
    page_start(severity=severity, incident=incident, now=now)
    _inform(incident, "declared")
    log.warning(
        "incidents.declared",
        incident_id=incident.pk,
        severity=severity.name,
        source=incident.source,
    )
    return incident


def incident_post(
    *,
    incident_id: int,
    kind: str,
    text: str,
    actor,
    status: str = "",
) -> TimelineEntry:
    """Post an update, an action taken or a decision; optionally move status.

    An update (of any of the three kinds) restarts the update-interval clock.
    """
    if kind not in (Kind.UPDATE, Kind.ACTION, Kind.DECISION):
        raise IncidentError("post an update, an action or a decision")
    if not text.strip():
        raise IncidentError("say what happened")
    now = timezone.now()
    with transaction.atomic():
        incident = _locked(incident_id)
        entry = _entry(incident, kind, text.strip(), actor=actor, at=now)
        incident.last_update_at = now
        incident.save(update_fields=["last_update_at"])
        if status and status != incident.status:
            _set_status(incident, status, actor, now)
    return entry


def incident_set_status(*, incident_id: int, status: str, actor, note: str = ""):
    now = timezone.now()
    with transaction.atomic():
        incident = _locked(incident_id)
        if status == incident.status:
            raise IncidentError(f"the incident is already {status}")
        _set_status(incident, status, actor, now, note=note)
    return incident


def _set_status(incident: Incident, status: str, actor, now, note: str = "") -> None:
    if status not in Status.values:
        raise IncidentError(f"unknown status {status!r}")
    before = incident.status
    incident.status = status
    field = _STATUS_TIMES.get(status)
    if field and getattr(incident, field) is None:
        setattr(incident, field, now)
    if status != Status.RESOLVED:
        incident.resolved_at = None
    try:
        with transaction.atomic():
            incident.save()
    except IntegrityError:
        raise IncidentError(
            "another incident is open for the same source; reopen refused"
        ) from None
    text = f"Status {before} → {status}."
    if note:
        text += f" {note}"
    _entry(
        incident, Kind.STATUS, text, actor=actor, at=now, before=before, after=status
    )
    if status == Status.RESOLVED:
        incident_page_cancel(incident=incident, now=now)
        _inform(incident, "resolved")
    log.info("incidents.status", incident_id=incident.pk, before=before, after=status)


def incident_set_severity(*, incident_id: int, severity: Severity, actor, reason: str):
    """Change the severity and re-evaluate the escalation under way."""
    if not reason.strip():
        raise IncidentError("give the reason for the new severity")
    now = timezone.now()
    with transaction.atomic():
        incident = _locked(incident_id)
        before = incident.severity
        if severity.pk == before.pk:
            raise IncidentError(f"the incident is already {severity.name}")
        incident.severity = severity
        incident.save(update_fields=["severity"])
        _entry(
            incident,
            Kind.SEVERITY,
            f"Severity {before.name} → {severity.name}: {reason.strip()}",
            actor=actor,
            at=now,
            before=before.name,
            after=severity.name,
        )
        if incident.is_open:
            incident_page_refreeze(incident=incident, now=now)
        if severity.level < before.level:
            _inform(incident, f"raised to {severity.name}")
    return incident


def incident_set_commander(*, incident_id: int, commander, actor) -> Incident:
    with transaction.atomic():
        incident = _locked(incident_id)
        before = incident.commander
        if before == commander:
            return incident
        incident.commander = commander
        incident.save(update_fields=["commander"])
        _entry(
            incident,
            Kind.COMMANDER,
            f"Commander {_name(before) if before else 'none'} → "
            f"{_name(commander) if commander else 'none'}.",
            actor=actor,
        )
    return incident


def incident_link_add(
    *, incident_id: int, target_type: str, target_id: str, label: str = "", actor
) -> IncidentLink:
    """Link a record of any app by model label and id ("stuck.stuckcase", 42)."""
    target_type = target_type.strip().lower()
    target_id = str(target_id).strip()
    if target_type.count(".") != 1 or not target_id:
        raise IncidentError("name the record as app_label.model and its id")
    with transaction.atomic():
        incident = _locked(incident_id)
        link, created = IncidentLink.objects.get_or_create(
            incident=incident,
            target_type=target_type,
            target_id=target_id,
            defaults={"label": label, "created_by": actor},
        )
        if created:
            _entry(
                incident,
                Kind.LINK,
                f"Linked {target_type} {target_id}" + (f": {label}" if label else ""),
                actor=actor,
                target_type=target_type,
                target_id=target_id,
            )
    return link


def order_authority(*, user, incident: Incident, order: str) -> str | None:
    """The role under which ``user`` may give ``order`` at the incident's
    severity, or None. Superuser is no authority: it is break-glass."""
    allowed = set(
        RollbackAuthority.objects.filter(
            severity=incident.severity, order=order
        ).values_list("role", flat=True)
    )
    held = sorted(allowed & set(user.groups.values_list("name", flat=True)))
    return held[0] if held else None


def incident_order(
    *, incident_id: int, order: str, what: str, reason: str, actor, request=None
) -> TimelineEntry:
    """Record a rollback or kill-switch order given under the actor's authority.

    Refused (IncidentError, nothing written) unless one of the actor's roles
    holds that authority at the incident's severity. The view in front of it
    asks for a fresh second factor. The order is a decision on the record;
    carrying it out (the deploy, the flag) stays with the people and tools
    that do it.
    """
    if order not in RollbackAuthority.Order.values:
        raise IncidentError(f"unknown order {order!r}")
    if not what.strip() or not reason.strip():
        raise IncidentError("say what is rolled back or switched off, and why")
    with transaction.atomic():
        incident = _locked(incident_id)
        if not incident.is_open:
            raise IncidentError("the incident is resolved")
        authority = order_authority(user=actor, incident=incident, order=order)
        label = RollbackAuthority.Order(order).label
        if authority is None:
            log.warning(
                "incidents.order_refused",
                incident_id=incident.pk,
                order=order,
                user=_name(actor),
            )
            raise IncidentError(
                f"none of your roles may order a {label} at {incident.severity.name}"
            )
        entry = _entry(
            incident,
            Kind.ORDER,
            f"{_name(actor)} ordered a {label}: {what.strip()}. Reason: "
            f"{reason.strip()} (authority: {authority} at {incident.severity.name}).",
            actor=actor,
            order=order,
            what=what.strip(),
            reason=reason.strip(),
            authority=authority,
            severity=incident.severity.name,
        )
        audit_record(
            actor=actor,
            action=f"incident.{order}_ordered",
            target=incident,
            after={"what": what.strip(), "authority": authority},
            request=request,
            reason=reason.strip(),
        )
    log.warning(
        "incidents.order", incident_id=incident.pk, order=order, authority=authority
    )
    return entry


def review_open(*, incident_id: int, actor) -> Review:
    """The incident's post-incident review, created on first use."""
    with transaction.atomic():
        incident = _locked(incident_id)
        review, created = Review.objects.get_or_create(
            incident=incident, defaults={"facilitator": actor}
        )
        if created:
            _entry(incident, Kind.REVIEW, "Post-incident review opened.", actor=actor)
    return review


def review_complete(*, review_id: int, actor) -> Review:
    """Close a review: it needs a summary, a root cause and the incident resolved."""
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review_id)
        missing = [
            name
            for name, value in (
                ("summary", review.summary),
                ("root cause", review.root_cause),
            )
            if not value.strip()
        ]
        if review.incident.is_open:
            missing.append("the incident resolved")
        if missing:
            raise IncidentError(f"the review still needs: {', '.join(missing)}")
        if review.completed_at is None:
            review.completed_at = timezone.now()
            review.save(update_fields=["completed_at"])
            _entry(
                review.incident,
                Kind.REVIEW,
                f"Post-incident review completed with "
                f"{review.action_items.count()} action item(s).",
                actor=actor,
            )
    return review


def incidents_remind_updates(*, now: datetime | None = None) -> int:
    """Remind commanders whose incident is past its update interval.

    One reminder per interval: the reminder is itself a timeline entry, and
    the next one is due an interval after it (or after the next update).
    """
    now = now or timezone.now()
    reminded = 0
    open_ids = Incident.objects.exclude(status=Status.RESOLVED).values_list(
        "pk", flat=True
    )
    for incident_id in list(open_ids):
        with transaction.atomic():
            incident = (
                Incident.objects.select_for_update(
                    no_key=True, skip_locked=True, of=("self",)
                )
                .select_related("severity", "commander")
                .filter(pk=incident_id)
                .first()
            )
            if incident is None or not incident.is_open:
                continue
            last = (
                incident.timeline.filter(kind=Kind.REMINDER)
                .order_by("-at")
                .values_list("at", flat=True)
                .first()
            )
            since = max(filter(None, [incident.last_update_at, last]))
            interval = incident.severity.update_minutes
            if (now - since).total_seconds() < interval * 60:
                continue
            _remind(incident, now, interval)
            reminded += 1
    return reminded


def _remind(incident: Incident, now: datetime, interval: int) -> None:
    who = incident.commander or oncall_person(role=INCIDENT_COMMANDER, at=now)
    _entry(
        incident,
        Kind.REMINDER,
        f"No status update for {interval} min or more: "
        f"{_name(who) if who else 'nobody'} reminded.",
        at=now,
    )
    for channel in ("slack", "email"):
        reach = contact_reach(who, channel)
        if reach is None:
            continue
        notify(
            channel=channel,
            target=reach.target,
            message=Message(
                summary=(f"<@{reach.mention}> " if reach.mention else "")
                + f"{incident.severity.name} incident #{incident.pk} is due a "
                f"status update (every {interval} min): {incident.title}",
                severity="warning",
                source="opsadmin incidents",
                key=f"incident.{incident.pk}.update-due",
                action="notify",
                component="incidents",
                details={"incident": incident_url(incident)},
                timestamp=now.isoformat(),
            ),
        )
        break
