from datetime import date

import pytest
import time_machine
from django.core import mail

from security.roles import SECURITY_ADMIN
from tests.factories import make_staff, make_user, make_waiver, verified_request
from waivers.models import Reminder, WaiverStatus
from waivers.services.observations import secrets_observe
from waivers.services.register import waiver_close
from waivers.tasks import reminders_send

pytestmark = pytest.mark.django_db

TODAY = "2026-12-01 07:30:00+00:00"


@pytest.fixture(autouse=True)
def _settings(settings, production_secrets):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WAIVER_REMINDER_DAYS = [14, 3]
    settings.SECRET_OWNER_EMAILS = {"platform": "platform@acme.invalid"}


def run(at=TODAY):
    with time_machine.travel(at, tick=False):
        reminders_send()


def sent(subject_fragment):
    return [m for m in mail.outbox if subject_fragment in m.subject]


def test_the_owner_hears_of_a_deadline_within_the_lead_time_once(roles):
    owner = make_user(email="mara@acme.invalid")
    waiver = make_waiver(owner=owner, deadline=date(2026, 12, 11))

    run()
    run()

    assert [m.to for m in sent(waiver.reference)] == [["mara@acme.invalid"]]
    assert mail.outbox[0].subject == f"Waiver {waiver.reference} is due in 10 days"
    assert Reminder.objects.get().kind == "due_in_14"


def test_the_nearer_lead_time_brings_a_second_reminder(roles):
    waiver = make_waiver(deadline=date(2026, 12, 11))
    run()

    run("2026-12-09 07:30:00+00:00")

    assert [m.subject for m in sent(waiver.reference)] == [
        f"Waiver {waiver.reference} is due in 10 days",
        f"Waiver {waiver.reference} is due in 2 days",
    ]


def test_a_deadline_further_away_brings_nothing(roles):
    make_waiver(deadline=date(2027, 1, 31))

    run()

    assert mail.outbox == []


def test_a_passed_deadline_escalates_to_the_owner_and_the_security_admins(roles):
    admin = make_staff(roles=[SECURITY_ADMIN], email="sec@acme.invalid")
    owner = make_user(email="owner@acme.invalid")
    waiver = make_waiver(owner=owner, deadline=date(2026, 11, 30))

    run()
    run()

    [message] = sent(waiver.reference)
    assert message.subject == f"Waiver {waiver.reference} is past its deadline"
    assert sorted(message.to) == sorted([admin.email, "owner@acme.invalid"])
    reminder = Reminder.objects.get()
    assert (reminder.kind, reminder.escalated) == ("overdue", True)


def test_an_escalation_is_resolved_once_the_waiver_is_closed(roles, approver):
    waiver = make_waiver(deadline=date(2026, 11, 30))
    run()
    with time_machine.travel(TODAY, tick=False):
        waiver_close(
            waiver_id=waiver.pk,
            actor=approver,
            request=verified_request(approver),
            reason="fixed",
        )

    run("2026-12-02 07:30:00+00:00")

    assert Reminder.objects.get(kind="overdue").resolved_at is not None
    assert waiver.__class__.objects.get().status == WaiverStatus.CLOSED


def test_a_secret_due_for_rotation_reminds_its_team(roles, settings):
    with time_machine.travel("2026-09-05 07:30:00+00:00", tick=False):
        secrets_observe(source="test")

    # DATABASE_URL (platform, every 90 days) falls due on 2026-12-04.
    run()

    [message] = sent("DATABASE_URL")
    assert message.subject == "DATABASE_URL is due for rotation in 3 days"
    assert message.to == ["platform@acme.invalid"]
    assert "docs/runbook.md, Secret rotation, DATABASE_URL" in message.body


def test_an_overdue_rotation_escalates_unless_a_waiver_covers_it(roles):
    admin = make_staff(roles=[SECURITY_ADMIN], email="sec@acme.invalid")
    with time_machine.travel("2026-08-01 07:30:00+00:00", tick=False):
        secrets_observe(source="test")
    with time_machine.travel(TODAY, tick=False):
        make_waiver(
            secret="REDIS_URL",
            risk="low",
            deadline=date(2026, 12, 20),
            approved_by=admin,
        )

    run()

    escalated = set(
        Reminder.objects.filter(escalated=True).values_list("subject", flat=True)
    )
    assert "secret:DATABASE_URL" in escalated
    assert "secret:REDIS_URL" not in escalated
    [message] = sent("DATABASE_URL is overdue")
    assert sorted(message.to) == ["platform@acme.invalid", "sec@acme.invalid"]


def test_a_reminder_that_could_not_be_sent_is_tried_again(roles, settings):
    waiver = make_waiver(deadline=date(2026, 12, 11))
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 2

    run()
    assert not Reminder.objects.exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    run()

    assert len(sent(waiver.reference)) == 1
    assert Reminder.objects.count() == 1
