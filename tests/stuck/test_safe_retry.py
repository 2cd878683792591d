"""Safe Retry of stuck payouts, against the sandbox provider over HTTP."""

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from finance.models import PayoutAttempt
from finance.services.payouts import payout_pay, payout_submit
from finance.states import PayoutState
from sandbox.models import SandboxPayout
from sandbox.services import sandbox_payout_settle
from security.models import AuditEntry
from security.roles import OPERATOR, VIEWER
from security.services import roles_sync
from security.stepup import VERIFIED_AT_SESSION_KEY
from stuck.models import StuckCase, StuckCaseActivity
from stuck.retry import RetryRefused, stuck_case_safe_retry
from stuck.services import stuck_detect
from tests.conftest import log_in_verified
from tests.factories import make_deposit, make_payout, make_staff, make_withdrawal
from tests.http_receiver import closed_port_url
from tests.sandbox.fixtures import celery_eager, sandbox  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

CHANGELIST = reverse("admin:stuck_stuckcase_changelist")


@pytest.fixture
def operator(default_rules):
    roles_sync(apply=True)
    return make_staff(roles=[OPERATOR])


def _case_of(item) -> StuckCase:
    """Run detection a day on, when every waiting item is stuck."""
    stuck_detect(now=timezone.now() + timedelta(days=1))
    return StuckCase.objects.get(item_id=item.pk, item_kind=item._meta.model_name)


def _plan(sandbox, payout, behaviour):  # noqa: F811
    sandbox.control("plans", reference=str(payout.reference), behaviour=behaviour)


def _retry_in_admin(client, *cases):
    return client.post(
        CHANGELIST,
        {"action": "safe_retry_selected", "_selected_action": [c.pk for c in cases]},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_never_accepted_payout_is_resubmitted_from_the_admin(
    client,
    sandbox,  # noqa: F811
    operator,
):
    payout = make_payout()
    case = _case_of(payout)
    log_in_verified(client, operator)

    response = _retry_in_admin(client, case)

    payout.refresh_from_db()
    assert payout.state == PayoutState.PROCESSING
    assert payout.provider_reference == SandboxPayout.objects.get().provider_reference
    attempt = payout.attempts.get()
    assert (attempt.outcome, attempt.triggered_by) == ("accepted", operator)
    assert payout.transitions.last().via == "safe_retry"
    (activity,) = case.activities.filter(kind=StuckCaseActivity.Kind.RETRIED)
    assert activity.actor == operator
    assert "attempt 1 accepted" in activity.text
    assert "created -> processing" in activity.text
    entry = AuditEntry.objects.get(action="payout.safe_retry")
    assert (entry.actor_username, entry.target_id) == (
        operator.username,
        str(payout.pk),
    )
    assert (entry.before, entry.after) == (
        {"state": "created"},
        {"state": "processing"},
    )
    assert f"Case {case.pk}: resubmitted: attempt 1 accepted" in _messages(response)[0]


def test_a_processing_payout_is_polled_and_catches_up_with_the_provider(
    sandbox,  # noqa: F811
    operator,
):
    payout = make_payout()
    _plan(sandbox, payout, "never_settle")
    payout_submit(payout_id=payout.pk, via="system")
    payout.refresh_from_db()
    case = _case_of(payout)
    sandbox_payout_settle(
        provider_reference=payout.provider_reference, send_webhook=False
    )

    outcome = stuck_case_safe_retry(case=case, actor=operator)

    assert (outcome.state_before, outcome.payout.state) == ("processing", "paid")
    assert outcome.moved
    assert outcome.payout.transitions.last().via == "safe_retry"
    assert SandboxPayout.objects.count() == 1


def test_a_poll_that_finds_nothing_new_changes_nothing_but_is_recorded(
    sandbox,  # noqa: F811
    operator,
):
    payout = make_payout()
    _plan(sandbox, payout, "never_settle")
    payout_submit(payout_id=payout.pk, via="system")
    case = _case_of(payout)

    outcome = stuck_case_safe_retry(case=case, actor=operator)

    assert not outcome.moved
    assert outcome.result.endswith("processing -> processing")
    assert case.activities.filter(kind="retried").count() == 1
    assert AuditEntry.objects.filter(action="payout.safe_retry").count() == 1


def test_a_withdrawal_without_payout_gets_its_payout_and_it_is_submitted(
    sandbox,  # noqa: F811
    operator,
):
    withdrawal = make_withdrawal()
    case = _case_of(withdrawal)

    outcome = stuck_case_safe_retry(case=case, actor=operator)

    assert outcome.payout.withdrawal_id == withdrawal.pk
    assert outcome.payout.state == PayoutState.PROCESSING
    assert SandboxPayout.objects.get().reference == str(outcome.payout.reference)


def test_two_retries_at_once_send_one_request_to_the_provider(
    sandbox,  # noqa: F811
    operator,
    settings,
):
    settings.SANDBOX_TIMEOUT_SECONDS = 1
    payout = make_payout()
    _plan(sandbox, payout, "timeout")  # answered, slowly: the first stays in flight
    case = _case_of(payout)
    start = threading.Barrier(2)
    results, errors = [], []

    def retry():
        from django.db import connection

        try:
            start.wait()
            results.append(stuck_case_safe_retry(case=case, actor=operator).result)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r.split(";")[0] for r in results) == [
        "nothing sent: attempt 1 is in flight",
        "resubmitted: attempt 1 accepted",
    ]
    assert PayoutAttempt.objects.filter(payout=payout).count() == 1
    assert SandboxPayout.objects.count() == 1


def test_a_payout_with_a_final_answer_is_refused_and_nothing_is_sent(
    sandbox,  # noqa: F811
    operator,
):
    payout = make_payout()
    case = _case_of(payout)
    payout_pay(payout_id=payout.pk, via="test", reason="paid", provider_reference="p1")

    with pytest.raises(RetryRefused, match="is paid: the provider has given its final"):
        stuck_case_safe_retry(case=case, actor=operator)

    assert not SandboxPayout.objects.exists()
    assert not case.activities.exists()
    assert not AuditEntry.objects.filter(action="payout.safe_retry").exists()


def test_a_closed_case_and_a_deposit_case_are_refused(sandbox, operator):  # noqa: F811
    deposit_case = _case_of(make_deposit())
    payout = make_payout()
    closed = _case_of(payout)
    StuckCase.objects.filter(pk=closed.pk).update(closed_at=timezone.now())
    closed.refresh_from_db()

    with pytest.raises(RetryRefused, match="is not retried from here"):
        stuck_case_safe_retry(case=deposit_case, actor=operator)
    with pytest.raises(RetryRefused, match="is closed"):
        stuck_case_safe_retry(case=closed, actor=operator)
    assert not SandboxPayout.objects.exists()


def test_a_stale_second_factor_is_asked_again_before_anything_is_sent(
    client,
    sandbox,  # noqa: F811
    operator,
):
    case = _case_of(make_payout())
    log_in_verified(client, operator)
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 3600
    session.save()

    response = _retry_in_admin(client, case)

    assert response.redirect_chain[-1][0].startswith(reverse("security:step_up"))
    assert not SandboxPayout.objects.exists()
    assert not case.activities.exists()


def test_a_viewer_is_not_offered_the_retry_and_cannot_post_it(
    client,
    sandbox,  # noqa: F811
    operator,
):
    case = _case_of(make_payout())
    log_in_verified(client, make_staff(roles=[VIEWER]))

    page = client.get(CHANGELIST)
    response = _retry_in_admin(client, case)

    assert "safe_retry_selected" not in page.content.decode()
    assert response.status_code == 200
    # The Viewer's list has no actions at all: the POST is shown the
    # read-only list and runs nothing.
    assert "<title>Select stuck case to view" in response.content.decode()
    assert _messages(response) == []
    assert not SandboxPayout.objects.exists()
    assert not case.activities.exists()


def test_too_many_cases_at_once_are_refused_whole(
    client,
    sandbox,  # noqa: F811
    operator,
    settings,
):
    settings.STUCK_SAFE_RETRY_MAX_CASES = 1
    first, second = make_payout(), make_payout()
    cases = [_case_of(first), StuckCase.objects.get(item_id=second.pk)]
    log_in_verified(client, operator)

    response = _retry_in_admin(client, *cases)

    assert "Select at most 1 cases for one safe retry" in _messages(response)[0]
    assert not SandboxPayout.objects.exists()


def test_an_unreachable_provider_is_recorded_and_changes_nothing(
    sandbox,  # noqa: F811
    operator,
    settings,
):
    payout = make_payout()
    _plan(sandbox, payout, "never_settle")
    payout_submit(payout_id=payout.pk, via="system")
    case = _case_of(payout)
    settings.PROVIDERS = {
        **settings.PROVIDERS,
        "sandbox": {**settings.PROVIDERS["sandbox"], "base_url": closed_port_url()},
    }

    outcome = stuck_case_safe_retry(case=case, actor=operator)

    assert outcome.result.startswith("the provider did not answer (")
    assert outcome.result.endswith("processing -> processing")
    assert not outcome.moved
    assert case.activities.get().text == outcome.result
