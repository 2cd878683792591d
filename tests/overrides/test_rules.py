"""Trying to break the two-person rule, and failing every time."""

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from finance.models import LedgerTransaction
from finance.services.payouts import payout_pay
from overrides.errors import (
    AlreadySettled,
    NotPermitted,
    StepUpRequired,
    Tampered,
)
from overrides.models import OverrideRequest
from overrides.services import (
    override_request_approve,
    override_request_execute,
    override_request_reject,
    override_request_withdraw,
)
from security.models import AuditEntry
from security.roles import APPROVER, OPERATOR
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_staff, make_stuck_payout, totp_code
from tests.overrides.conftest import approve_data, approve_url, request_of

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SUBMITTED_AT = "2026-12-01 09:00:00"
STALE = "2026-12-01 09:05:30"  # 330 s later: past STEP_UP_MAX_AGE_SECONDS
LAST_SECOND = "2026-12-01 10:59:59"  # TTL 120 min: expires at 11:00:00
EXPIRY = "2026-12-01 11:00:00"


def _release_written(payout) -> bool:
    return LedgerTransaction.objects.filter(
        idempotency_key=f"withdrawal:{payout.withdrawal_id}:release"
    ).exists()


def _status(override) -> str:
    override.refresh_from_db()
    return override.status


def _approve_as(user, override):
    client = log_in(Client(), user)
    return client.post(approve_url(override), approve_data(override), follow=True)


def test_it_refuses_self_approval_even_to_someone_holding_both_roles(roles):
    both = make_staff(roles=[OPERATOR, APPROVER])
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=both)

    page = _approve_as(both, override)

    assert "nobody approves their own override request" in page.content.decode()
    assert _status(override) == "submitted"
    assert not _release_written(payout)
    assert not AuditEntry.objects.filter(action="override.approved").exists()
    refused = AuditEntry.objects.get(action="override.refused")
    assert (refused.actor, refused.after["attempted"]) == (both, "approve")


def test_the_service_refuses_self_approval_whatever_the_page(roles):
    both = make_staff(roles=[OPERATOR, APPROVER])
    override = make_override(target=make_stuck_payout(), doer=both)
    client = log_in(Client(), both)

    with pytest.raises(NotPermitted, match="own override request"):
        override_request_approve(
            override_id=override.pk,
            approver=both,
            request=request_of(client, both),
            **approve_data(override),
        )


def test_the_database_refuses_an_approval_by_the_doer(roles, doer):
    from django.db import IntegrityError, transaction

    override = make_override(target=make_stuck_payout(), doer=doer)

    with pytest.raises(IntegrityError), transaction.atomic():
        OverrideRequest.objects.filter(pk=override.pk).update(
            status="approved",
            approver=doer,
            approved_at=override.submitted_at,
            approval_hash="x" * 64,
        )


@pytest.mark.parametrize("role", [OPERATOR, "Viewer", "Incident commander"])
def test_it_refuses_approval_by_a_user_without_the_approver_role(roles, doer, role):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    client = log_in(Client(), make_staff(roles=[role]))

    response = client.post(approve_url(override), approve_data(override))

    assert response.status_code == 403
    assert _status(override) == "submitted"
    assert not _release_written(payout)
    assert AuditEntry.objects.get(action="override.refused").after["error"] == (
        "lacks overrides.approve_overriderequest"
    )


def test_the_service_refuses_an_approver_without_the_role(roles, doer):
    other = make_staff(roles=[OPERATOR])
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), other)

    with pytest.raises(NotPermitted):
        override_request_approve(
            override_id=override.pk,
            approver=other,
            request=request_of(client, other),
            **approve_data(override),
        )


def test_a_stale_second_factor_is_asked_again_before_approving(doer, approver):
    client = Client()
    with time_machine.travel(SUBMITTED_AT, tick=False):
        payout = make_stuck_payout()
        override = make_override(target=payout, doer=doer)
        log_in(client, approver)
    with time_machine.travel(STALE, tick=False):
        prompt = client.post(approve_url(override), approve_data(override))

        assert prompt.status_code == 302
        assert prompt["Location"].startswith(reverse("security:step_up"))
        assert _status(override) == "submitted"

        confirm = client.post(prompt["Location"], {"token": totp_code(approver)})
        pending = dict(confirm.context["pending"])
        done = client.post(confirm.context["next"], pending)

    assert done.status_code == 302
    assert _status(override) == "executed"
    assert AuditEntry.objects.filter(action="mfa.step_up", actor=approver).exists()


def test_the_service_refuses_an_approval_without_a_fresh_second_factor(doer, approver):
    client = Client()
    with time_machine.travel(SUBMITTED_AT, tick=False):
        override = make_override(target=make_stuck_payout(), doer=doer)
        log_in(client, approver)
    with (
        time_machine.travel(STALE, tick=False),
        pytest.raises(StepUpRequired),
    ):
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request_of(client, approver),
            **approve_data(override),
        )
    assert _status(override) == "submitted"


def test_an_unverified_session_cannot_approve_through_the_service(doer, approver):
    client = Client()
    client.force_login(approver)  # a password, no second factor
    override = make_override(target=make_stuck_payout(), doer=doer)

    with pytest.raises(StepUpRequired):
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request_of(client, approver),
            **approve_data(override),
        )


def test_it_approves_in_the_last_second_before_expiry(doer, approver):
    with time_machine.travel(SUBMITTED_AT, tick=False):
        override = make_override(target=make_stuck_payout(), doer=doer)
    with time_machine.travel(LAST_SECOND, tick=False):
        _approve_as(approver, override)

    assert _status(override) == "executed"


def test_it_refuses_approval_at_expiry_and_expires_the_request(doer, approver):
    with time_machine.travel(SUBMITTED_AT, tick=False):
        payout = make_stuck_payout()
        override = make_override(target=payout, doer=doer)
    with time_machine.travel(EXPIRY, tick=False):
        page = _approve_as(approver, override)

    assert "expired" in page.content.decode()
    assert _status(override) == "expired"
    assert not _release_written(payout)
    assert AuditEntry.objects.filter(action="override.expired").count() == 1


def test_it_refuses_approval_after_the_target_changed(doer, approver):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    # Meanwhile the provider's webhook settles the payout.
    payout_pay(payout_id=payout.pk, via="webhook", reason="provider paid it")

    page = _approve_as(approver, override)

    assert "has changed since the request" in page.content.decode()
    assert _status(override) == "submitted"
    assert not _release_written(payout)
    payout.refresh_from_db()
    assert payout.state == "paid"


def test_execution_fails_cleanly_when_the_target_moves_after_approval(doer, approver):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    client = log_in(Client(), approver)
    override_request_approve(
        override_id=override.pk,
        approver=approver,
        request=request_of(client, approver),
        **approve_data(override),
    )
    payout_pay(payout_id=payout.pk, via="webhook", reason="provider paid it")

    done = override_request_execute(
        override_id=override.pk, actor=approver, request=request_of(client, approver)
    )

    assert done.status == "failed"
    assert "moved on" in done.execution_error
    assert _status(override) == "failed"
    assert not _release_written(payout)
    assert AuditEntry.objects.filter(action="override.failed").count() == 1


def test_an_approval_bound_to_another_content_hash_is_refused(doer, approver):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    client = log_in(Client(), approver)

    with pytest.raises(Tampered):
        override_request_approve(
            override_id=override.pk,
            approver=approver,
            request=request_of(client, approver),
            content_hash="0" * 64,
            target_version=override.target_version,
        )
    assert _status(override) == "submitted"


def test_only_the_approver_executes_an_approved_request(roles, doer, approver):
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), approver)
    override_request_approve(
        override_id=override.pk,
        approver=approver,
        request=request_of(client, approver),
        **approve_data(override),
    )
    another = make_staff(roles=[APPROVER])
    other_client = log_in(Client(), another)

    with pytest.raises(NotPermitted, match="only the approver"):
        override_request_execute(
            override_id=override.pk,
            actor=another,
            request=request_of(other_client, another),
        )
    assert _status(override) == "approved"


def test_a_request_is_approved_once(doer, approver):
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), approver)
    client.post(approve_url(override), approve_data(override))

    page = client.post(approve_url(override), approve_data(override), follow=True)

    assert "is executed" in page.content.decode()
    assert AuditEntry.objects.filter(action="override.executed").count() == 1


def test_replaying_the_approval_without_a_csrf_token_is_refused(doer, approver):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    browser = log_in(Client(), approver)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = browser.cookies  # the same logged-in, verified session

    response = strict.post(approve_url(override), approve_data(override))

    assert response.status_code == 403
    assert _status(override) == "submitted"
    assert not _release_written(payout)


def test_the_same_session_approves_with_its_csrf_token(doer, approver):
    override = make_override(target=make_stuck_payout(), doer=doer)
    browser = log_in(Client(), approver)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = browser.cookies
    page = strict.get(
        reverse("admin:overrides_overriderequest_change", args=[override.pk])
    )
    token = page.context["csrf_token"]

    response = strict.post(
        approve_url(override), {**approve_data(override), "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert _status(override) == "executed"


def test_the_doer_cannot_reject_and_others_cannot_withdraw(roles, doer, approver):
    override = make_override(target=make_stuck_payout(), doer=doer)
    colleague = make_staff(roles=[OPERATOR])

    with pytest.raises(NotPermitted):
        override_request_reject(override_id=override.pk, approver=doer, reason="no")
    with pytest.raises(NotPermitted):
        override_request_withdraw(
            override_id=override.pk, doer=colleague, reason="mine now"
        )
    assert _status(override) == "submitted"


def test_a_rejected_request_cannot_be_approved_or_withdrawn(doer, approver):
    override = make_override(target=make_stuck_payout(), doer=doer)
    override_request_reject(
        override_id=override.pk, approver=approver, reason="retry first"
    )

    page = _approve_as(approver, override)

    assert "is rejected" in page.content.decode()
    with pytest.raises(AlreadySettled):
        override_request_withdraw(override_id=override.pk, doer=doer, reason="late")
    entry = AuditEntry.objects.get(action="override.rejected")
    assert (entry.actor, entry.reason) == (approver, "retry first")


def test_the_doer_withdraws_from_the_review_page(doer):
    override = make_override(target=make_stuck_payout(), doer=doer)
    client = log_in(Client(), doer)

    client.post(
        reverse("admin:overrides_overriderequest_withdraw", args=[override.pk]),
        {"reason": "the provider paid after all"},
    )

    assert _status(override) == "withdrawn"
    assert AuditEntry.objects.get(action="override.withdrawn").actor == doer


def test_one_open_request_per_target(doer):
    payout = make_stuck_payout()
    make_override(target=payout, doer=doer)

    with pytest.raises(AlreadySettled, match="already has an open override"):
        make_override(target=payout, doer=doer)
