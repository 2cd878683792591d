"""Several escalation workers at once, on real PostgreSQL connections."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents.models import (
    EscalationStep,
    Incident,
    Page,
    PageNotification,
    Severity,
)
from incidents.services.paging import freeze_policy, pages_advance
from tests.factories import make_rotation
from tests.incidents.conftest import paged

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WORKERS = 4
PAGES = 6


def _due_pages(person) -> list[Page]:
    # Built here, not from the seeded matrix: a transactional test starts
    # from a flushed database.
    responder = person("responder")
    severity = Severity.objects.create(
        level=9,
        name="Sev9",
        title="Test",
        meaning="-",
        response_minutes=5,
        update_minutes=30,
        who_must_be_told="-",
        pages_at_night=True,
    )
    EscalationStep.objects.create(
        severity=severity,
        position=1,
        rotation=make_rotation(members=[responder]),
        wait_minutes=5,
    )
    pages = []
    for number in range(PAGES):
        incident = Incident.objects.create(
            title=f"incident {number}", severity=severity
        )
        pages.append(
            Page.objects.create(
                incident=incident,
                severity=severity,
                policy=freeze_policy(severity),
                next_step_at=timezone.now() - timedelta(seconds=1),
            )
        )
    return pages


def test_concurrent_workers_send_each_step_exactly_once(person, receiver):
    pages = _due_pages(person)
    barrier = threading.Barrier(WORKERS)
    errors = []

    def worker():
        try:
            barrier.wait()
            pages_advance()
        except Exception as exc:  # reported below, with the thread's error
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    for page in pages:
        sent = PageNotification.objects.filter(page=page, outcome="sent")
        assert sorted(sent.values_list("channel", flat=True)) == ["pagerduty", "slack"]
        page.refresh_from_db()
        assert page.next_index == 1
    assert paged(receiver).count(("pagerduty", "PD-responder")) == PAGES
    assert paged(receiver).count(("slack", "responder")) == PAGES
