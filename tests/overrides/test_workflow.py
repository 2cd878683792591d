"""The whole workflow through the admin, as the doer and the approver use it."""

import pytest
from django.test import Client
from django.urls import reverse

from finance.models import LedgerTransaction, Payout, Wallet, Withdrawal
from overrides.models import OverrideRequest
from security.models import AuditEntry
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_stuck_payout
from tests.overrides.conftest import approve_data, approve_url, detail_url

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _add_url(payout, action="payout_fail"):
    return (
        reverse("admin:overrides_overriderequest_add")
        + f"?target_kind=payout&target_id={payout.pk}&action={action}"
    )


def test_the_doer_sees_the_preview_before_submitting(doer):
    payout = make_stuck_payout(amount=5_000, fee=150)
    client = log_in(Client(), doer)

    page = client.get(_add_url(payout))

    assert page.status_code == 200
    text = page.content.decode()
    assert f"Payout {payout.pk} becomes failed" in text
    assert "-50.00 EUR" in text
    assert "-1.50 EUR" in text
    assert "51.50 EUR" in text
    assert not OverrideRequest.objects.exists()


def test_the_doer_submits_from_the_admin_and_it_is_audited(doer):
    payout = make_stuck_payout()
    client = log_in(Client(), doer)

    response = client.post(
        _add_url(payout),
        {
            "reason": "provider says it never left",
            "ticket_reference": "OPS-7",
            "seen_target_version": payout.version,
            "_submit": "1",
        },
    )

    override = OverrideRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(override)
    assert override.status == "submitted"
    assert override.doer == doer
    assert (override.target_state, override.target_version) == ("processing", 2)
    assert override.content_hash == override.compute_content_hash()
    entry = AuditEntry.objects.get(action="override.submitted")
    assert entry.actor == doer
    assert entry.reason == "provider says it never left"


def test_a_submission_for_a_target_that_moved_since_the_preview_is_refused(doer):
    payout = make_stuck_payout()
    client = log_in(Client(), doer)

    response = client.post(
        _add_url(payout),
        {
            "reason": "r",
            "ticket_reference": "OPS-8",
            "seen_target_version": payout.version - 1,
            "_submit": "1",
        },
    )

    assert response.status_code == 200
    assert "changed since you looked" in response.content.decode()
    assert not OverrideRequest.objects.exists()


def test_the_approver_sees_what_will_happen_and_the_view_is_audited(doer, approver):
    payout = make_stuck_payout(amount=5_000)
    override = make_override(target=payout, doer=doer)
    client = log_in(Client(), approver)

    page = client.get(detail_url(override))

    text = page.content.decode()
    assert "What approving will do, computed now" in text
    assert "processing" in text
    assert "failed" in text
    assert "50.00 EUR" in text
    assert str(doer) in text
    assert 'id="approve"' in text
    viewed = AuditEntry.objects.get(action="override.viewed")
    assert viewed.actor == approver


def test_approving_executes_through_the_finance_services(doer, approver):
    payout = make_stuck_payout(amount=5_000, fee=150)
    wallet = Wallet.objects.get(pk=payout.wallet_id)
    override = make_override(target=payout, doer=doer, reason="never sent")
    client = log_in(Client(), approver)

    response = client.post(approve_url(override), approve_data(override))

    assert response.status_code == 302
    override.refresh_from_db()
    payout.refresh_from_db()
    assert override.status == "executed"
    assert override.approver == approver
    assert payout.state == "failed"
    assert Withdrawal.objects.get(pk=payout.withdrawal_id).state == "failed"
    wallet.refresh_from_db()
    assert wallet.balance == 5_150
    release = LedgerTransaction.objects.get(
        idempotency_key=f"withdrawal:{payout.withdrawal_id}:release"
    )
    assert release.created_by == approver
    steps = list(
        AuditEntry.objects.filter(target_id=str(override.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert steps == ["override.submitted", "override.approved", "override.executed"]


def test_the_target_history_shows_the_override_and_its_reason(doer, approver):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer, reason="bank confirms")
    client = log_in(Client(), approver)

    client.post(approve_url(override), approve_data(override))

    latest = Payout.history.filter(id=payout.pk).order_by("-history_id").first()
    assert latest.state == "failed"
    assert latest.history_change_reason.startswith(f"override {override.pk} (")
    assert "bank confirms" in latest.history_change_reason
    assert latest.history_user == approver
    transition = payout.transitions.last()
    assert (transition.via, transition.actor) == ("override", approver)
