"""Paging: starting an escalation, advancing it, acknowledging it.

The state of every escalation is a ``Page`` row; the ``incidents_tick``
job calls ``pages_advance`` every 30 seconds (and a page that starts asks
for one pass at once). Each notification is an alerts ``Delivery`` written
in the same transaction as the step that sends it, and handed to a worker
only after that transaction commits.
"""

import zoneinfo
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts.channels import Message
from alerts.services import alert_resolve, alert_trigger, notify
from incidents.models import (
    EscalationTest,
    Incident,
    Page,
    PageNotification,
    Rotation,
    Severity,
    TimelineEntry,
)
from incidents.selectors import (
    CHANNEL_NAMES,
    absolute_url,
    contact_reach,
    incident_url,
    oncall_resolve,
)

log = structlog.get_logger(__name__)

ACK_SALT = "incidents.page-acknowledge"


def freeze_policy(severity: Severity) -> list[dict]:
    """The severity's steps as plain data, to be copied onto a page."""
    steps = severity.escalation_steps.select_related("rotation", "person").order_by(
        "position", "id"
    )
    return [
        {
            "position": number,
            "rotation_id": step.rotation_id,
            "rotation": step.rotation.name if step.rotation is not None else "",
            "person_id": step.person_id,
            "person": step.person.get_username() if step.person is not None else "",
            "channels": step.channels,
            "wait_minutes": step.wait_minutes,
        }
        for number, step in enumerate(steps, start=1)
    ]


def night_end(at: datetime) -> datetime | None:
    """The end of the night ``at`` falls in, or None when it is day.

    Night runs from INCIDENTS_NIGHT_STARTS_HOUR to INCIDENTS_NIGHT_ENDS_HOUR
    in INCIDENTS_TIME_ZONE, across midnight when the first is the larger.
    """
    zone = zoneinfo.ZoneInfo(settings.INCIDENTS_TIME_ZONE)
    starts, ends = (
        settings.INCIDENTS_NIGHT_STARTS_HOUR,
        settings.INCIDENTS_NIGHT_ENDS_HOUR,
    )
    local = at.astimezone(zone)
    if starts == ends:
        return None
    across_midnight = starts > ends
    at_night = (
        (local.hour >= starts or local.hour < ends)
        if across_midnight
        else starts <= local.hour < ends
    )
    if not at_night:
        return None
    day = local.date()
    if across_midnight and local.hour >= starts:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, ends, tzinfo=zone)


def _kick() -> None:
    """Ask a worker for one advancing pass once this transaction commits."""
    from incidents.tasks import advance_pages

    transaction.on_commit(advance_pages.delay, robust=True)


def page_start(
    *,
    severity: Severity,
    incident: Incident | None = None,
    escalation_test: EscalationTest | None = None,
    start_index: int = 0,
    now: datetime | None = None,
) -> Page | None:
    """Freeze the severity's policy onto a new page; None when it has no steps.

    A severity that does not page at night starts its page at the end of the
    night (an escalation test never waits).
    """
    now = now or timezone.now()
    policy = freeze_policy(severity)
    if not policy:
        return None
    due = now
    morning = None if escalation_test or severity.pages_at_night else night_end(now)
    if morning is not None:
        due = morning
    page = Page.objects.create(
        incident=incident,
        escalation_test=escalation_test,
        severity=severity,
        policy=policy,
        # A test goes through every step once.
        repeats=0 if escalation_test else severity.escalation_repeats,
        next_index=min(start_index, len(policy) - 1),
        next_step_at=due,
        started_at=now,
    )
    if incident is not None:
        text = (
            f"Paging started with the {severity.name} policy "
            f"({len(policy)} steps, {page.repeats} repeats)."
        )
        if morning is not None:
            text = (
                f"{severity.name} does not page at night: paging starts at "
                f"{morning:%Y-%m-%d %H:%M} {settings.INCIDENTS_TIME_ZONE}."
            )
        _timeline(incident, TimelineEntry.Kind.PAGE, text, at=now, page=page.pk)
    log.info(
        "incidents.page_started",
        page_id=page.pk,
        incident_id=incident.pk if incident else None,
        severity=severity.name,
        due=due.isoformat(),
    )
    _kick()
    return page


def pages_advance(*, now: datetime | None = None, limit: int = 200) -> dict:
    """Run every escalation step that is due; return counts. Safe to run
    concurrently and twice.

    For each due page, in its own transaction:

    1. Claim it: ``SELECT ... FOR UPDATE SKIP LOCKED`` on the oldest active
       page whose next step is due. A concurrent pass skips it and claims
       the next one; an acknowledgement waits for the lock, then finds the
       step done (and stops the next one).
    2. Act: resolve who is on call now, write a notification row per
       person and channel with its alerts delivery (the outbox), and move
       the page to its next step, or finish it.
    3. Commit. Only now are the deliveries handed to the alerts worker
       (``transaction.on_commit``). A worker that dies before the commit
       leaves nothing behind and the next pass runs the step; one that dies
       after it leaves pending deliveries, which the alerts sweeper sends.
       So a step is neither lost nor sent twice, and the unique
       (page, step, person, channel) row makes a repeat impossible.
    """
    now = now or timezone.now()
    counts = {"steps": 0, "notified": 0, "unreached": 0, "finished": 0}
    for _ in range(limit):
        with transaction.atomic():
            page = (
                Page.objects.select_for_update(skip_locked=True)
                .filter(status=Page.Status.ACTIVE, next_step_at__lte=now)
                .order_by("next_step_at", "id")
                .first()
            )
            if page is None:
                break
            _advance(page, now, counts)
    if counts["steps"] or counts["finished"]:
        log.info("incidents.pages_advanced", **counts)
    return counts


def _advance(page: Page, now: datetime, counts: dict) -> None:
    if page.next_index >= page.total_steps:
        _finish(page, now)
        counts["finished"] += 1
        return

    index = page.next_index
    step = page.policy[index % len(page.policy)]
    round_number = index // len(page.policy) + 1
    notes = _notify_step(page, step, index, round_number, now)
    sent = [n for n in notes if n.outcome == PageNotification.Outcome.SENT]
    counts["steps"] += 1
    counts["notified"] += len(sent)
    counts["unreached"] += len(notes) - len(sent)

    page.next_index = index + 1
    # A step that reached nobody is not worth waiting for: the next one
    # runs in this same pass.
    wait = timedelta(minutes=step["wait_minutes"]) if sent else timedelta(0)
    page.next_step_at = now + wait
    page.save(update_fields=["next_index", "next_step_at"])

    if page.incident_id:
        _timeline(
            page.incident,
            TimelineEntry.Kind.PAGE,
            _step_sentence(step, round_number, notes),
            at=now,
            page=page.pk,
            step=step["position"],
            round=round_number,
        )


def _step_sentence(step: dict, round_number: int, notes: list) -> str:
    where = f"Step {step['position']}"
    if round_number > 1:
        where += f" (repeat {round_number - 1})"
    sent = [n for n in notes if n.outcome == PageNotification.Outcome.SENT]
    if not sent:
        reasons = "; ".join(_unreached_reason(n) for n in notes)
        return f"{where} reached nobody ({reasons}); escalating at once."
    people: dict[str, list[str]] = {}
    for note in sent:
        people.setdefault(note.person_name, []).append(CHANNEL_NAMES[note.channel])
    told = "; ".join(f"{name} ({', '.join(ch)})" for name, ch in people.items())
    source = f" on call in {step['rotation']}" if step["rotation"] else ""
    return f"{where}: paged {told}{source}; next step in {step['wait_minutes']} min."


def _unreached_reason(note: PageNotification) -> str:
    if note.outcome == PageNotification.Outcome.NOBODY:
        return f"nobody on call in {note.rotation_name}"
    return f"{note.person_name} has no {CHANNEL_NAMES[note.channel]} contact"


def _step_person(step: dict, at: datetime):
    if step["rotation_id"]:
        rotation = Rotation.objects.filter(pk=step["rotation_id"]).first()
        return oncall_resolve(rotation, at).user if rotation else None
    return get_user_model().objects.filter(pk=step["person_id"]).first()


def _notify_step(page: Page, step: dict, index: int, round_number: int, now):
    common = {
        "page": page,
        "index": index,
        "round": round_number,
        "step_position": step["position"],
        "rotation_name": step["rotation"],
        "wait_minutes": step["wait_minutes"],
        "notified_at": now,
    }
    person = _step_person(step, now)
    if person is None:
        note = PageNotification.objects.create(
            outcome=PageNotification.Outcome.NOBODY, **common
        )
        return [note]

    notes = []
    for channel in step["channels"]:
        reach = contact_reach(person, channel)
        note = PageNotification.objects.create(
            person=person,
            person_name=person.get_username(),
            channel=channel,
            outcome=(
                PageNotification.Outcome.SENT
                if reach
                else PageNotification.Outcome.NO_CONTACT
            ),
            dedup_key=f"{_page_key(page)}.{index}" if reach else "",
            **common,
        )
        if reach is not None:
            note.delivery = notify(
                channel=channel,
                target=reach.target,
                message=_page_message(page, note, step, reach.mention, now),
            )
            note.save(update_fields=["delivery"])
        notes.append(note)
    return notes


def _page_key(page: Page) -> str:
    if page.is_test:
        return f"escalation-test.{page.escalation_test_id}.page.{page.pk}"
    return f"incident.{page.incident_id}.page.{page.pk}"


def acknowledge_token(note: PageNotification) -> str:
    return signing.dumps(note.pk, salt=ACK_SALT, compress=True)


def acknowledge_url(note: PageNotification) -> str:
    return absolute_url(
        reverse("incidents:acknowledge", args=[acknowledge_token(note)])
    )


def notification_from_token(token: str) -> PageNotification | None:
    """The notification a link was sent with; None when forged or too old."""
    max_age = settings.INCIDENTS_ACK_LINK_MAX_AGE_HOURS * 3600
    try:
        pk = signing.loads(token, salt=ACK_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return (
        PageNotification.objects.select_related(
            "page__incident", "page__severity", "page__escalation_test", "person"
        )
        .filter(pk=pk)
        .first()
    )


def _page_message(page: Page, note, step: dict, mention: str, now) -> Message:
    severity = page.severity
    where = f"step {step['position']} of {len(page.policy)}"
    if note.round > 1:
        where += f", repeat {note.round - 1}"
    details = {"acknowledge": acknowledge_url(note)}
    test, incident = page.escalation_test, page.incident
    if test is not None:
        summary = (
            f"[TEST] Escalation test {test.pk} of {severity.name}, {where}: "
            "not a real incident. Acknowledge to show you were reached."
        )
        details["test"] = "yes: this is an escalation test, nothing is wrong"
        action, alert_class, group = "notify", "escalation_test", "escalation-test"
    elif incident is not None:
        summary = f"{severity.name} incident #{incident.pk}: {incident.title} ({where})"
        details["incident"] = incident_url(incident)
        details["status"] = incident.get_status_display()
        action, alert_class, group = "trigger", "incident_page", "incidents"
    else:
        raise ValueError(f"page {page.pk} belongs to no incident and no test")
    details["severity"] = f"{severity.name}: {severity.title}"
    details["respond within"] = f"{severity.response_minutes} minutes"
    if mention:
        summary = f"<@{mention}> {summary}"
    return Message(
        summary=summary,
        severity=severity.alert_severity,
        source="opsadmin incidents",
        key=note.dedup_key,
        action=action,
        component="incidents",
        group=group,
        alert_class=alert_class,
        details=details,
        timestamp=now.isoformat(),
    )


def _exhausted_alert_key(page: Page) -> str:
    return f"incident.{page.incident_id}.unacknowledged"


def _finish(page: Page, now: datetime) -> None:
    page.next_step_at = None
    page.ended_at = now
    test, incident = page.escalation_test, page.incident
    if test is not None:
        page.status = Page.Status.COMPLETED
        page.save(update_fields=["status", "next_step_at", "ended_at"])
        test.finished_at = now
        test.save(update_fields=["finished_at"])
        log.info("incidents.escalation_test_finished", test_id=test.pk)
        return

    page.status = Page.Status.EXHAUSTED
    page.save(update_fields=["status", "next_step_at", "ended_at"])
    if incident is None:
        return
    _timeline(
        incident,
        TimelineEntry.Kind.PAGE,
        "Nobody acknowledged after every step of the policy: the team's "
        "default page route was alerted.",
        at=now,
        page=page.pk,
    )
    log.error("incidents.page_exhausted", page_id=page.pk, incident_id=incident.pk)
    # The last resort is the team's own route (PagerDuty service, channel).
    alert_trigger(
        key=_exhausted_alert_key(page),
        summary=(
            f"Nobody acknowledged {page.severity.name} incident #{incident.pk} "
            f"({incident.title}) through its whole escalation policy"
        ),
        severity=page.severity.alert_severity,
        component="incidents",
        group="incidents",
        alert_class="page_unacknowledged",
        route="page",
        details={"incident": incident_url(incident)},
    )


def page_acknowledge(
    *,
    page_id: int,
    user=None,
    notification_id: int | None = None,
    via: str,
    now: datetime | None = None,
) -> tuple[Page, bool]:
    """Acknowledge a page; return it and whether this call stopped it.

    ``via`` is "admin" (a logged-in user pressed the button) or "link" (the
    signed link of notification ``notification_id``, whose person is then
    the one acknowledging). Repeating it changes nothing.

    1. Lock the page row. ``pages_advance`` holds the same lock while it
       runs a step, so an acknowledgement lands before a step (which then
       never runs) or after it (and stops the next one).
    2. Record the acknowledgement on the notification, if any.
    3. A real page stops escalating; its PagerDuty incidents are resolved so
       phones stop ringing. A test page goes on through every step, and
       moves on early once everyone told at the current step answered.
    """
    now = now or timezone.now()
    with transaction.atomic():
        page = (
            Page.objects.select_for_update(of=("self",))
            .select_related("incident", "severity")
            .get(pk=page_id)
        )
        note = None
        if notification_id is not None:
            note = page.notifications.select_related("person").get(pk=notification_id)
            user = user or note.person
            if note.acknowledged_at is None:
                note.acknowledged_at = now
                note.save(update_fields=["acknowledged_at"])

        if page.is_test:
            _test_move_on_when_answered(page, now)
            return page, False
        if page.status == Page.Status.SUPERSEDED and page.incident is not None:
            # A link from before a severity change: it answers the page
            # that took over.
            current = (
                page.incident.pages.select_for_update()
                .filter(status__in=[Page.Status.ACTIVE, Page.Status.EXHAUSTED])
                .first()
            )
            page = current or page
        if page.status not in (Page.Status.ACTIVE, Page.Status.EXHAUSTED):
            return page, False

        exhausted = page.status == Page.Status.EXHAUSTED
        page.status = Page.Status.ACKNOWLEDGED
        page.acknowledged_at = now
        page.acknowledged_by = user
        page.acknowledged_via = via
        page.ended_at = now
        page.next_step_at = None
        page.save()
        minutes = int((now - page.started_at).total_seconds() // 60)
        name = user.get_username() if user else "someone"
        channel = f" on {CHANNEL_NAMES[note.channel]}" if note else ""
        _timeline(
            page.incident,
            TimelineEntry.Kind.ACKNOWLEDGED,
            f"{name} acknowledged the page via {via}{channel}, {minutes} min after "
            "paging started; escalation stopped.",
            at=now,
            actor=user,
            page=page.pk,
        )
        _pagerduty_resolve(page)
        if exhausted:
            alert_resolve(key=_exhausted_alert_key(page))
    log.info("incidents.page_acknowledged", page_id=page.pk, via=via)
    return page, True


def _test_move_on_when_answered(page: Page, now: datetime) -> None:
    if page.status != Page.Status.ACTIVE or page.next_index == 0:
        return
    current = page.notifications.filter(
        index=page.next_index - 1, outcome=PageNotification.Outcome.SENT
    )
    told = set(current.values_list("person_id", flat=True))
    answered = set(
        current.filter(acknowledged_at__isnull=False).values_list(
            "person_id", flat=True
        )
    )
    due = page.next_step_at
    if told and told == answered and due is not None and due > now:
        page.next_step_at = now
        page.save(update_fields=["next_step_at"])
        _kick()


def page_stop(*, page: Page, status: str, now: datetime) -> None:
    """End an active page without an acknowledgement (superseded, cancelled).

    The caller holds the incident's lock; the page row is locked here.
    """
    page = Page.objects.select_for_update().get(pk=page.pk)
    if page.status != Page.Status.ACTIVE:
        return
    page.status = status
    page.ended_at = now
    page.next_step_at = None
    page.save(update_fields=["status", "ended_at", "next_step_at"])
    _pagerduty_resolve(page)


def _pagerduty_resolve(page: Page) -> None:
    """Resolve what the page opened in people's PagerDuty, once each.

    The other direction is missing: acknowledging in the PagerDuty app does
    not reach us, because nothing receives PagerDuty's webhooks yet, so the
    page keeps escalating until someone uses the link or the admin. That is
    acceptable while each message says so and carries the link; an inbound
    PagerDuty webhook calling ``page_acknowledge`` would close the gap.
    A resolve is queued even when its trigger is still being retried; should
    the trigger land after it, that PagerDuty incident stays open until
    resolved by hand (rare: it needs PagerDuty to fail and then recover
    during the acknowledgement).
    """
    opened = page.notifications.filter(
        channel="pagerduty",
        outcome=PageNotification.Outcome.SENT,
        delivery__isnull=False,
    ).select_related("delivery")
    done = set()
    for note in opened:
        delivery = note.delivery
        if delivery is None or (delivery.target, note.dedup_key) in done:
            continue
        done.add((delivery.target, note.dedup_key))
        notify(
            channel="pagerduty",
            target=delivery.target,
            message=Message(
                summary=f"page {page.pk} {page.status}",
                key=note.dedup_key,
                action="resolve",
                component="incidents",
            ),
        )


def incident_page_refreeze(*, incident: Incident, now: datetime) -> Page | None:
    """Re-evaluate paging after a severity change (the incident is locked).

    An escalation under way is superseded by the new severity's policy,
    starting again at the step it had reached (clamped to the new policy's
    length); a severity without steps stops it. An incident that was not
    paging (declared at a level that does not page, or whose page ran out)
    starts paging from the first step. An acknowledged page stays
    acknowledged: someone already answered.
    """
    active = incident.pages.filter(status=Page.Status.ACTIVE).first()
    if active is None:
        if incident.pages.filter(status=Page.Status.ACKNOWLEDGED).exists():
            return None
        return page_start(severity=incident.severity, incident=incident, now=now)

    reached = max(active.next_index - 1, 0) % len(active.policy)
    page_stop(page=active, status=Page.Status.SUPERSEDED, now=now)
    page = page_start(
        severity=incident.severity, incident=incident, start_index=reached, now=now
    )
    if page is None:
        _timeline(
            incident,
            TimelineEntry.Kind.PAGE,
            f"{incident.severity.name} does not page: escalation stopped.",
            at=now,
        )
    return page


def incident_page_cancel(*, incident: Incident, now: datetime) -> None:
    """The incident is resolved: stop paging and close the last-resort alert."""
    for page in incident.pages.filter(status=Page.Status.ACTIVE):
        page_stop(page=page, status=Page.Status.CANCELLED, now=now)
    for page in incident.pages.filter(status=Page.Status.EXHAUSTED):
        alert_resolve(key=_exhausted_alert_key(page))


def escalation_test_start(
    *, severity: Severity, actor, note: str = ""
) -> EscalationTest:
    """Run ``severity``'s matrix once, through every step, marked as a test."""
    with transaction.atomic():
        test = EscalationTest.objects.create(
            severity=severity, started_by=actor, note=note
        )
        page = page_start(severity=severity, escalation_test=test)
        if page is None:
            test.finished_at = test.started_at
            test.save(update_fields=["finished_at"])
    log.info(
        "incidents.escalation_test_started", test_id=test.pk, severity=severity.name
    )
    return test


def _timeline(incident, kind, text, *, at, actor=None, **details) -> TimelineEntry:
    return TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        text=text,
        at=at,
        actor=actor,
        actor_name=actor.get_username() if actor else "system",
        details=details,
    )
