"""Retries, backoff and the e-mail fallback, against real loopback HTTP."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from alerts.models import Delivery, DeliveryAttempt
from alerts.selectors import undelivered_q
from alerts.services import (
    alert_resolve,
    alert_trigger,
    deliveries_sweep,
    delivery_resend,
)
from alerts.tasks import sweep
from tests.http_receiver import closed_port_url

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def pagerduty_only(receiver, settings):
    settings.SLACK_WEBHOOK_URL = ""
    settings.ALERT_MAX_ATTEMPTS = 3
    settings.ALERT_RETRY_BASE_SECONDS = 30
    return receiver


def _trigger(committed):
    with committed():
        alert_trigger(key="job.nightly.failed", summary="Job nightly failed")
    return Delivery.objects.get(channel="pagerduty")


def _attempt_outcomes(delivery):
    return list(
        delivery.attempt_rows.order_by("number").values_list("outcome", "http_status")
    )


def test_it_does_not_retry_a_400_and_falls_back_to_email(pagerduty_only, committed):
    pagerduty_only.answer(400)

    delivery = _trigger(committed)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert _attempt_outcomes(delivery) == [(DeliveryAttempt.Outcome.REFUSED, 400)]
    assert delivery.fallback.status == Delivery.Status.DELIVERED
    assert mail.outbox[0].subject == "[opsadmin ALERT] Job nightly failed"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_it_retries_429_and_5xx_after_a_backoff(pagerduty_only, committed, status):
    pagerduty_only.answer(status)
    with time_machine.travel(T0, tick=False) as clock:
        delivery = _trigger(committed)
        delivery.refresh_from_db()
        assert delivery.status == Delivery.Status.PENDING
        assert delivery.next_attempt_at == T0 + dt.timedelta(seconds=30)

        clock.shift(dt.timedelta(seconds=29))
        with committed():
            assert deliveries_sweep() == 0
        clock.shift(dt.timedelta(seconds=1))
        with committed():
            assert deliveries_sweep() == 1

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert _attempt_outcomes(delivery) == [
        (DeliveryAttempt.Outcome.RETRYABLE, status),
        (DeliveryAttempt.Outcome.DELIVERED, 202),
    ]
    assert len(pagerduty_only.bodies("/pagerduty")) == 2
    assert mail.outbox == []


def test_it_doubles_the_wait_between_attempts(pagerduty_only, committed):
    pagerduty_only.answer(500, 500)
    with time_machine.travel(T0, tick=False) as clock:
        delivery = _trigger(committed)
        clock.shift(dt.timedelta(seconds=30))
        with committed():
            deliveries_sweep()

        delivery.refresh_from_db()
        assert delivery.attempts == 2
        assert delivery.next_attempt_at == T0 + dt.timedelta(seconds=30 + 60)


def test_it_retries_an_unreachable_endpoint_then_reaches_the_fallback(
    pagerduty_only, committed, settings
):
    settings.PAGERDUTY_EVENTS_URL = closed_port_url()
    with time_machine.travel(T0, tick=False) as clock:
        delivery = _trigger(committed)
        for wait in (30, 60):
            clock.shift(dt.timedelta(seconds=wait))
            with committed():
                sweep()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert [o for o, _ in _attempt_outcomes(delivery)] == ["retryable"] * 3
    assert delivery.last_error == "ConnectionError"
    assert delivery.fallback.status == Delivery.Status.DELIVERED
    assert mail.outbox[0].to == ["oncall@example.com"]


def test_it_keeps_an_alert_undelivered_when_even_email_fails(
    pagerduty_only, committed, settings
):
    pagerduty_only.answer(400)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = int(closed_port_url().split(":")[2].split("/")[0])
    settings.ALERT_MAX_ATTEMPTS = 1

    delivery = _trigger(committed)

    undelivered = Delivery.objects.filter(undelivered_q())
    assert list(undelivered) == [delivery]
    assert delivery.fallback.status == Delivery.Status.FAILED
    assert "ConnectionRefusedError" in delivery.fallback.last_error


def test_it_attempts_a_delivery_once_however_often_it_is_queued(
    pagerduty_only, committed
):
    delivery = _trigger(committed)
    with committed():
        assert deliveries_sweep() == 0

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert len(pagerduty_only.bodies("/pagerduty")) == 1


def test_it_resends_a_failed_delivery_as_a_new_one(pagerduty_only, committed):
    pagerduty_only.answer(400)
    delivery = _trigger(committed)

    with committed():
        (resent,) = delivery_resend(delivery_ids=[delivery.pk])

    resent.refresh_from_db()
    assert resent.status == Delivery.Status.DELIVERED
    assert resent.message == delivery.message


def test_an_alert_with_no_channel_at_all_is_undelivered_not_lost(
    receiver, committed, settings
):
    settings.PAGERDUTY_ROUTING_KEY = ""
    settings.SLACK_WEBHOOK_URL = ""
    settings.ALERT_EMAIL_TO = []

    with committed():
        alert_trigger(key="job.nightly.failed", summary="Job nightly failed")

    (delivery,) = Delivery.objects.filter(undelivered_q())
    assert delivery.last_error == "no recipients (ALERT_EMAIL_TO is empty)"
    assert mail.outbox == []


def test_a_resolve_waits_until_its_trigger_is_delivered(pagerduty_only, committed):
    pagerduty_only.answer(500)
    with time_machine.travel(T0, tick=False) as clock:
        _trigger(committed)
        with committed():
            alert_resolve(key="job.nightly.failed")
        assert len(pagerduty_only.bodies("/pagerduty")) == 1

        clock.shift(dt.timedelta(seconds=30))
        for _ in range(2):
            with committed():
                deliveries_sweep()

    events = pagerduty_only.bodies("/pagerduty")
    assert [e["event_action"] for e in events] == ["trigger", "trigger", "resolve"]
