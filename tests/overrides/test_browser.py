"""One override request end to end in headless Chromium, with two people.

The doer and the approver each log in with a password and a TOTP code the
test generates. The approver's second factor is made stale before the
approval, so the approval goes through the step-up prompt too.
"""

import pytest

from finance.models import Payout, Wallet, Withdrawal
from overrides.models import OverrideRequest
from security.audit import audit_chain_verify
from security.roles import APPROVER, OPERATOR
from security.services import roles_sync
from tests.browser import admin_log_in, chromium, make_step_up_stale
from tests.factories import make_staff, make_stuck_payout, totp_code

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def test_a_request_goes_from_doer_to_approver_to_the_ledger(live_server, monkeypatch):
    roles_sync(apply=True)
    doer = make_staff(roles=[OPERATOR])
    approver = make_staff(roles=[APPROVER])
    payout = make_stuck_payout(amount=5_000, fee=150)
    base = live_server.url
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        seen = _walk_through(browser, base, doer, approver, payout)

    assert seen["preview"].count("EUR") >= 3
    assert "51.50 EUR" in seen["preview"]
    assert seen["status_for_approver"] == "executed"
    assert "approved and executed" in seen["message"]
    assert seen["status_for_doer"] == "executed"
    payout.refresh_from_db()
    assert payout.state == "failed"
    assert Withdrawal.objects.get(pk=payout.withdrawal_id).state == "failed"
    assert Wallet.objects.get(pk=payout.wallet_id).balance == 5_150
    assert Payout.history.filter(id=payout.pk).first().history_user == approver
    assert audit_chain_verify().intact
    assert seen["violations"] == []


def _walk_through(browser, base, doer, approver, payout) -> dict:
    seen: dict = {"violations": []}

    # The doer picks the payout and the action, previews, submits.
    doer_page = admin_log_in(browser, base, doer, violations=seen["violations"])
    doer_page.goto(f"{base}/admin/overrides/overriderequest/add/")
    doer_page.select_option("#id_target_kind", "payout")
    doer_page.fill("#id_target_id", str(payout.pk))
    doer_page.select_option("#id_action", "payout_fail")
    doer_page.click("#content-main input[type=submit]")
    doer_page.fill("#id_reason", "Provider support: the transfer was rejected.")
    doer_page.fill("#id_ticket_reference", "OPS-900")
    doer_page.click("input[name=_preview]")
    assert "goes back to the wallet" in doer_page.inner_text("#override-preview")
    doer_page.click("input[name=_submit]")
    doer_page.wait_for_selector("#override-status")
    assert doer_page.inner_text("#override-status") == "submitted"
    override = OverrideRequest.objects.get()

    # The approver reviews what will happen, then approves with a fresh code.
    approver_page = admin_log_in(browser, base, approver, violations=seen["violations"])
    make_step_up_stale(approver_page)
    approver_page.goto(f"{base}/admin/overrides/overriderequest/{override.pk}/change/")
    seen["preview"] = approver_page.inner_text("#override-preview")
    assert "processing" in seen["preview"]
    assert doer.username in approver_page.inner_text(".override-status")
    approver_page.click("#approve")
    approver_page.wait_for_url("**/security/step-up/**")
    approver_page.fill("#id_token", totp_code(approver, steps_ahead=1))
    approver_page.click("#content-main input[type=submit]")
    approver_page.click("#content-main input[value=Continue]")
    approver_page.wait_for_selector("#override-outcome")
    seen["status_for_approver"] = approver_page.inner_text("#override-status")
    seen["message"] = approver_page.inner_text(".messagelist")

    # The doer, still on the request's page, sees the outcome.
    doer_page.reload()
    seen["status_for_doer"] = doer_page.inner_text("#override-status")
    return seen
