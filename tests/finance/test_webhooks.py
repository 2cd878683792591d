"""The provider webhook endpoint, over real HTTP: what it applies, what it
refuses, and that a refusal changes nothing but the delivery log."""

import json
import time

import pytest
import requests

from finance import webhooks
from finance.models import (
    Deposit,
    LedgerTransaction,
    Payout,
    PayoutTransition,
    Posting,
    Wallet,
    WebhookDelivery,
    WebhookEvent,
)
from finance.services.payouts import payout_accept, payout_fail
from finance.states import DepositState, PayoutState, WithdrawalState
from tests.factories import make_deposit, make_payout, make_provider_event

pytestmark = pytest.mark.django_db(transaction=True)


def _accepted_payout(**fields):
    payout = make_payout(**fields)
    return payout_accept(payout_id=payout.pk, provider_reference="po_1", via="test")


def _books():
    """Everything a webhook may change, apart from the delivery log."""
    return (
        list(Posting.objects.values_list("pk", flat=True)),
        list(LedgerTransaction.objects.values_list("pk", flat=True)),
        list(WebhookEvent.objects.values_list("event_id", flat=True)),
        list(Payout.objects.values_list("pk", "state", "version")),
        list(Deposit.objects.values_list("pk", "state", "version")),
        list(Wallet.objects.values_list("pk", "balance")),
    )


def _refused(sandbox, payload, **signing):
    """Deliver, and check the delivery changed nothing but the log."""
    before = _books()
    response = sandbox.post_webhook(payload, **signing)
    assert _books() == before
    return response, WebhookDelivery.objects.get()


def test_it_applies_a_paid_payout_and_records_the_delivery(sandbox):
    payout = _accepted_payout()
    event = make_provider_event(payout, "payout.paid")

    response = sandbox.post_webhook(event)

    payout.refresh_from_db()
    assert response.status_code == 200
    assert payout.state == PayoutState.PAID
    assert payout.transitions.last().via == "webhook"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.http_status, delivery.event_id) == (
        "applied",
        200,
        event["id"],
    )
    assert (delivery.operation_kind, delivery.operation_id) == ("payout", payout.pk)
    assert delivery.payload == event


def test_a_payout_named_only_by_our_reference_learns_the_providers_id(sandbox):
    payout = make_payout()
    event = make_provider_event(payout, "payout.paid", id="po_77")

    sandbox.post_webhook(event)

    payout.refresh_from_db()
    assert (payout.state, payout.provider_reference) == ("paid", "po_77")


def test_a_reversed_payout_is_returned_to_the_wallet(sandbox):
    payout = _accepted_payout(amount=3_000)
    sandbox.post_webhook(make_provider_event(payout, "payout.paid"))

    sandbox.post_webhook(make_provider_event(payout, "payout.reversed"))

    payout.refresh_from_db()
    payout.wallet.refresh_from_db()
    assert payout.state == PayoutState.RETURNED
    assert payout.withdrawal.state == WithdrawalState.RETURNED
    assert payout.wallet.balance == 3_000


def test_a_succeeded_deposit_credits_the_wallet(sandbox):
    deposit = make_deposit(amount=2_500)

    response = sandbox.post_webhook(
        make_provider_event(deposit, "deposit.succeeded", id="pi_9")
    )

    deposit.refresh_from_db()
    deposit.wallet.refresh_from_db()
    assert response.status_code == 200
    assert (deposit.state, deposit.provider_reference) == ("succeeded", "pi_9")
    assert deposit.wallet.balance == 2_500


def test_a_chargeback_takes_the_deposit_back(sandbox):
    deposit = make_deposit(amount=2_500)
    sandbox.post_webhook(make_provider_event(deposit, "deposit.succeeded", id="pi_9"))
    deposit.refresh_from_db()

    sandbox.post_webhook(make_provider_event(deposit, "deposit.charged_back"))

    deposit.refresh_from_db()
    assert deposit.state == DepositState.CHARGED_BACK


def test_a_missing_signature_is_refused(sandbox):
    payout = _accepted_payout()

    response, delivery = _refused(
        sandbox, make_provider_event(payout, "payout.paid"), signature=""
    )

    assert response.status_code == 401
    assert delivery.outcome == "bad_signature"


def test_a_signature_with_another_secret_is_refused(sandbox):
    payout = _accepted_payout()

    response, delivery = _refused(
        sandbox, make_provider_event(payout, "payout.paid"), secret="whsec_other"
    )

    assert response.status_code == 401
    assert delivery.error == "signature does not match"


def test_a_stale_timestamp_is_refused(sandbox, settings):
    payout = _accepted_payout()
    old = int(time.time()) - settings.WEBHOOK_TOLERANCE_SECONDS - 60

    response, delivery = _refused(
        sandbox, make_provider_event(payout, "payout.paid"), timestamp=old
    )

    assert response.status_code == 400
    assert delivery.outcome == "stale"


def test_malformed_json_is_refused(sandbox):
    _accepted_payout()

    response, delivery = _refused(sandbox, b'{"id": "evt_1", "type": ')

    assert response.status_code == 400
    assert (delivery.outcome, delivery.payload) == ("malformed", None)


def test_an_oversized_body_is_refused_unread(sandbox, settings):
    payout = _accepted_payout()
    event = make_provider_event(payout, "payout.paid")
    event["padding"] = "x" * settings.WEBHOOK_MAX_BODY_BYTES

    response, delivery = _refused(sandbox, event)

    assert response.status_code == 413
    assert (delivery.outcome, delivery.payload) == ("too_large", None)


def test_an_unknown_event_type_is_refused(sandbox):
    payout = _accepted_payout()

    response, delivery = _refused(
        sandbox, make_provider_event(payout, "payout.teleported")
    )

    assert response.status_code == 422
    assert delivery.outcome == "unknown_type"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": 12.5}, "integer"),
        ({"amount": "5000"}, "integer"),
        ({"amount": 0}, "positive"),
        ({"amount": -5000}, "positive"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"currency": "JPY"}, "not supported"),
        ({"id": None, "reference": None}, "by id or reference"),
        ({"reference": "not-a-uuid"}, "UUID"),
    ],
)
def test_an_event_with_bad_data_is_refused(sandbox, data, message):
    payout = _accepted_payout()

    response, delivery = _refused(
        sandbox, make_provider_event(payout, "payout.paid", **data)
    )

    assert response.status_code == 400
    assert delivery.outcome == "malformed"
    assert message in delivery.error


@pytest.mark.parametrize(
    "data", [{"amount": 5_001}, {"currency": "USD"}], ids=["amount", "currency"]
)
def test_an_event_that_disagrees_with_the_payout_is_rejected(sandbox, data):
    payout = _accepted_payout(amount=5_000)

    response, delivery = _refused(
        sandbox, make_provider_event(payout, "payout.paid", **data)
    )

    assert response.status_code == 422
    assert delivery.outcome == "rejected"


def test_an_event_with_another_providers_id_for_our_payout_is_rejected(sandbox):
    payout = _accepted_payout()
    event = make_provider_event(payout, "payout.paid", id="po_someone_else")

    response, delivery = _refused(sandbox, event)

    assert response.status_code == 422
    assert "po_someone_else" in delivery.error


def test_an_event_for_an_operation_we_do_not_know_is_not_found(sandbox):
    payout = _accepted_payout()
    event = make_provider_event(
        payout,
        "payout.paid",
        id="po_unknown",
        reference="0b9c3a55-0a7e-4bde-8a43-4b1d1c7b3f00",
    )

    response, delivery = _refused(sandbox, event)

    assert response.status_code == 404
    assert delivery.outcome == "not_found"


def test_the_same_event_twice_is_applied_once(sandbox):
    payout = _accepted_payout()
    event = make_provider_event(payout, "payout.paid")
    sandbox.post_webhook(event)
    before = _books()

    response = sandbox.post_webhook(event)

    assert _books() == before
    assert response.status_code == 200
    assert response.json()["outcome"] == "duplicate"
    assert WebhookDelivery.objects.filter(outcome="duplicate").count() == 1


def test_news_we_already_have_under_a_new_event_id_is_a_duplicate(sandbox):
    payout = _accepted_payout()
    sandbox.post_webhook(make_provider_event(payout, "payout.paid"))

    response = sandbox.post_webhook(make_provider_event(payout, "payout.paid"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "duplicate"
    assert "already paid" in response.json()["error"]
    assert PayoutTransition.objects.filter(to_state="paid").count() == 1


def test_an_illegal_transition_is_rejected_with_a_conflict(sandbox):
    payout = _accepted_payout()
    payout_fail(payout_id=payout.pk, via="test", reason="bank said no")

    response, delivery = _refused(sandbox, make_provider_event(payout, "payout.paid"))

    assert response.status_code == 409
    assert delivery.outcome == "rejected"
    assert "cannot move from failed to paid" in delivery.error


def test_our_own_failure_is_a_500_the_provider_will_retry(sandbox, monkeypatch):
    payout = _accepted_payout()

    def broken(pk, event):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(webhooks.MOVES, "payout.paid", broken)

    response, delivery = _refused(sandbox, make_provider_event(payout, "payout.paid"))

    assert response.status_code == 500
    assert (delivery.outcome, delivery.error) == (
        "failed",
        "RuntimeError: disk on fire",
    )


def test_a_provider_we_do_not_have_gets_a_404_and_no_record(sandbox):
    url = sandbox.webhook_url.replace("/sandbox/", "/nobody/")

    response = requests.post(url, data=json.dumps({"id": "evt_1"}), timeout=10)

    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()
