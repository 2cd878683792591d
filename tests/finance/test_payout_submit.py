"""Submitting payouts to the sandbox provider and recording what came back."""

import pytest

from finance.models import PayoutAttempt
from finance.services.payouts import payout_pay, payout_poll, payout_submit
from finance.states import PayoutState, WithdrawalState
from sandbox.models import SandboxIdempotencyKey, SandboxPayout
from sandbox.services import sandbox_payout_settle
from tests.factories import (
    make_payout,
    make_provider_event,
    make_user,
    make_wallet,
)
from tests.http_receiver import closed_port_url

pytestmark = pytest.mark.django_db(transaction=True)


def _plan(sandbox, payout, behaviour):
    sandbox.control("plans", reference=str(payout.reference), behaviour=behaviour)


def test_an_accepted_payout_is_processing_with_the_providers_reference(sandbox):
    payout = make_payout()
    user = make_user()

    submission = payout_submit(payout_id=payout.pk, via="admin", actor=user)

    payout.refresh_from_db()
    assert payout.state == PayoutState.PROCESSING
    assert payout.provider_reference == SandboxPayout.objects.get().provider_reference
    assert payout.attempt_count == 1
    attempt = submission.attempt
    assert (attempt.outcome, attempt.http_status, attempt.triggered_by) == (
        PayoutAttempt.Outcome.ACCEPTED,
        201,
        user,
    )


def test_it_sends_the_payouts_idempotency_key(sandbox):
    payout = make_payout()

    payout_submit(payout_id=payout.pk, via="system")

    assert SandboxIdempotencyKey.objects.get().key == payout.idempotency_key


def test_a_rejected_payout_fails_and_gives_the_money_back(sandbox):
    wallet = make_wallet(balance=10_000)
    payout = make_payout(wallet=wallet, amount=4_000, fee=100)
    _plan(sandbox, payout, "reject")

    submission = payout_submit(payout_id=payout.pk, via="system")

    payout.refresh_from_db()
    wallet.refresh_from_db()
    assert submission.attempt.outcome == PayoutAttempt.Outcome.REJECTED
    assert payout.state == PayoutState.FAILED
    assert payout.withdrawal.state == WithdrawalState.FAILED
    assert "payout_rejected" in payout.last_error
    assert wallet.balance == 10_000


def test_a_timeout_leaves_the_payout_created_for_a_retry(sandbox, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    payout = make_payout()
    _plan(sandbox, payout, "timeout")

    submission = payout_submit(payout_id=payout.pk, via="system")

    payout.refresh_from_db()
    assert payout.state == PayoutState.CREATED
    assert submission.attempt.outcome == PayoutAttempt.Outcome.TIMEOUT
    assert submission.retryable
    assert "no answer" in payout.last_error
    sandbox.wait_until_answered(payout.idempotency_key)


def test_a_retry_after_a_timeout_creates_exactly_one_provider_payout(sandbox, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    payout = make_payout()
    _plan(sandbox, payout, "timeout")
    payout_submit(payout_id=payout.pk, via="system")
    sandbox.wait_until_answered(payout.idempotency_key)

    retry = payout_submit(payout_id=payout.pk, via="system")

    payout.refresh_from_db()
    assert retry.attempt.outcome == PayoutAttempt.Outcome.ACCEPTED
    assert payout.state == PayoutState.PROCESSING
    assert SandboxPayout.objects.count() == 1
    assert payout.provider_reference == SandboxPayout.objects.get().provider_reference
    assert list(payout.attempts.values_list("outcome", flat=True)) == [
        "timeout",
        "accepted",
    ]


def test_a_retry_while_the_first_is_in_flight_at_the_provider_is_a_conflict(
    sandbox, settings
):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 3
    payout = make_payout()
    _plan(sandbox, payout, "timeout")
    payout_submit(payout_id=payout.pk, via="system")

    retry = payout_submit(payout_id=payout.pk, via="system")

    payout.refresh_from_db()
    assert retry.attempt.outcome == PayoutAttempt.Outcome.CONFLICT
    assert retry.retryable
    assert payout.state == PayoutState.CREATED
    sandbox.wait_until_answered(payout.idempotency_key)


def test_an_unreachable_provider_leaves_the_payout_created(settings):
    settings.PROVIDERS = {
        "sandbox": {
            **settings.PROVIDERS["sandbox"],
            "base_url": closed_port_url(),
        }
    }
    payout = make_payout()

    submission = payout_submit(payout_id=payout.pk, via="system")

    payout.refresh_from_db()
    assert submission.attempt.outcome == PayoutAttempt.Outcome.ERROR
    assert submission.retryable
    assert payout.state == PayoutState.CREATED


def test_a_payout_past_created_is_not_sent_again(sandbox):
    payout = make_payout()
    payout_pay(payout_id=payout.pk, via="webhook", reason="paid")

    submission = payout_submit(payout_id=payout.pk, via="system")

    assert submission.attempt is None
    assert submission.skipped == "payout is paid"
    assert not SandboxPayout.objects.exists()


def test_a_payout_with_an_attempt_in_flight_is_not_sent_again(sandbox):
    payout = make_payout()
    PayoutAttempt.objects.create(payout=payout, number=1)

    submission = payout_submit(payout_id=payout.pk, via="system")

    assert submission.skipped == "attempt 1 is in flight"
    assert not SandboxPayout.objects.exists()


def test_a_poll_catches_up_with_a_payout_whose_webhook_never_came(sandbox):
    payout = make_payout()
    _plan(sandbox, payout, "never_settle")
    payout_submit(payout_id=payout.pk, via="system")
    payout.refresh_from_db()
    sandbox_payout_settle(
        provider_reference=payout.provider_reference, send_webhook=False
    )

    polled = payout_poll(payout_id=payout.pk)

    assert polled.state == PayoutState.PAID
    assert polled.transitions.last().via == "poll"


def test_a_poll_of_a_payout_still_processing_changes_nothing(sandbox):
    payout = make_payout()
    _plan(sandbox, payout, "never_settle")
    payout_submit(payout_id=payout.pk, via="system")

    polled = payout_poll(payout_id=payout.pk)

    assert polled.state == PayoutState.PROCESSING
    assert polled.version == 2


def test_a_poll_learns_the_id_of_a_payout_known_only_by_our_reference(
    sandbox, settings
):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    payout = make_payout()
    _plan(sandbox, payout, "timeout")
    payout_submit(payout_id=payout.pk, via="system")
    sandbox.wait_until_answered(payout.idempotency_key)
    sandbox.post_webhook(make_provider_event(payout, "payout.processing", id=None))
    at_provider = SandboxPayout.objects.get()
    sandbox_payout_settle(
        provider_reference=at_provider.provider_reference, send_webhook=False
    )

    polled = payout_poll(payout_id=payout.pk)

    assert polled.state == PayoutState.PAID
    assert polled.provider_reference == at_provider.provider_reference
    assert SandboxPayout.objects.count() == 1
