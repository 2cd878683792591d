"""The payout tasks and the payout_sweep job, run eagerly against the
sandbox over real HTTP."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from finance import tasks
from finance.models import Payout
from finance.services.payouts import payout_submit, payout_sweep
from finance.services.withdrawals import withdrawal_cancel
from finance.states import PayoutState
from jobs.models import JobRun
from sandbox.models import SandboxPayout
from sandbox.services import sandbox_payout_settle
from tests.factories import make_payout, make_withdrawal
from tests.http_receiver import closed_port_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_starting_a_payout_twice_sends_one(sandbox):
    withdrawal = make_withdrawal()

    tasks.start_payout.apply(args=(withdrawal.pk,))
    tasks.start_payout.apply(args=(withdrawal.pk,))

    payout = Payout.objects.get(withdrawal=withdrawal)
    assert payout.state == PayoutState.PROCESSING
    assert payout.attempt_count == 1
    assert SandboxPayout.objects.count() == 1


def test_a_cancelled_withdrawal_gets_no_payout(sandbox):
    withdrawal = make_withdrawal()
    withdrawal_cancel(withdrawal_id=withdrawal.pk, via="admin", reason="asked")

    tasks.start_payout.apply(args=(withdrawal.pk,))

    assert not Payout.objects.exists()


def test_an_unreachable_provider_is_retried_then_left_for_the_sweep(settings):
    settings.PROVIDERS = {
        "sandbox": {**settings.PROVIDERS["sandbox"], "base_url": closed_port_url()}
    }
    payout = make_payout()

    # Eagerly, Celery runs each retry at once instead of after the backoff.
    tasks.submit_payout.apply(args=(payout.pk,))

    payout.refresh_from_db()
    assert payout.state == PayoutState.CREATED
    assert payout.attempt_count == tasks.MAX_RETRIES + 1


def test_polling_catches_up_with_a_settled_payout(sandbox):
    payout = make_payout()
    sandbox.control("plans", reference=str(payout.reference), behaviour="never_settle")
    payout_submit(payout_id=payout.pk, via="system")
    payout.refresh_from_db()
    sandbox_payout_settle(
        provider_reference=payout.provider_reference, send_webhook=False
    )

    tasks.poll_payout.apply(args=(payout.pk,))

    payout.refresh_from_db()
    assert payout.state == PayoutState.PAID


def test_the_sweep_starts_submits_and_polls_what_was_left_behind(sandbox, settings):
    settings.PAYOUT_SWEEP_GRACE_MINUTES = 5
    settings.PAYOUT_POLL_AFTER_MINUTES = 30
    unstarted = make_withdrawal()
    unsent = make_payout()
    silent = make_payout()
    sandbox.control("plans", reference=str(silent.reference), behaviour="never_settle")
    payout_submit(payout_id=silent.pk, via="system")
    silent.refresh_from_db()
    sandbox_payout_settle(
        provider_reference=silent.provider_reference, send_webhook=False
    )
    cache.delete_many(
        [f"payout-sweep:submit:{unsent.pk}", f"payout-sweep:poll:{silent.pk}"]
    )

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        counts = payout_sweep()

    assert counts == {"started": 1, "submitted": 1, "polled": 1}
    assert Payout.objects.get(withdrawal=unstarted).state == PayoutState.PROCESSING
    unsent.refresh_from_db()
    silent.refresh_from_db()
    assert unsent.state == PayoutState.PROCESSING
    assert silent.state == PayoutState.PAID


def test_the_sweep_leaves_fresh_work_to_its_own_tasks(sandbox):
    make_withdrawal()
    make_payout()

    counts = payout_sweep()

    assert counts == {"started": 0, "submitted": 0, "polled": 0}


def test_the_sweep_runs_as_a_recorded_job(sandbox):
    call_command("run_job", "payout_sweep")

    run = JobRun.objects.get(job="payout_sweep")
    assert run.outcome == JobRun.Outcome.SUCCESS
    assert run.counts == {"started": 0, "submitted": 0, "polled": 0}
