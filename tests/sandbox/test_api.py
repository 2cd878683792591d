"""The sandbox provider's HTTP API, called over real HTTP."""

import csv
import io
import uuid

import pytest
import time_machine

from sandbox.models import SandboxIdempotencyKey, SandboxPayout
from sandbox.services import (
    sandbox_deposit_charge_back,
    sandbox_deposit_create,
    sandbox_deposit_settle,
    sandbox_payout_create,
    sandbox_payout_return,
    sandbox_payout_settle,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _payout_body(**fields):
    body = {
        "reference": str(uuid.uuid4()),
        "amount": 5_000,
        "currency": "EUR",
        "destination": {"label": "Sparkasse ****3000"},
    }
    body.update(fields)
    return body


def _post_payout(sandbox, body, key="key-1", **headers):
    return sandbox.call(
        "POST", "payouts", json=body, headers={"Idempotency-Key": key, **headers}
    )


def test_it_refuses_a_request_without_the_api_key(sandbox):
    response = sandbox.call("GET", "payouts/po_1", headers={"Authorization": ""})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_it_requires_an_idempotency_key_to_create(sandbox):
    response = sandbox.call("POST", "payouts", json=_payout_body())

    assert response.status_code == 400
    assert not SandboxPayout.objects.exists()


def test_a_replay_answers_the_stored_response_and_says_so(sandbox):
    body = _payout_body()
    first = _post_payout(sandbox, body)

    second = _post_payout(sandbox, body)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_a_key_reused_with_other_parameters_is_refused(sandbox):
    _post_payout(sandbox, _payout_body())

    response = _post_payout(sandbox, _payout_body())

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert SandboxPayout.objects.count() == 1


def test_an_invalid_request_is_not_stored_against_its_key(sandbox):
    refused = _post_payout(sandbox, _payout_body(amount=12.5))

    accepted = _post_payout(sandbox, _payout_body())

    assert (refused.status_code, accepted.status_code) == (400, 201)


def test_a_rejection_is_stored_and_replayed_like_any_answer(sandbox):
    body = _payout_body()
    _post_payout(sandbox, body, **{"Sandbox-Behaviour": "reject"})

    replay = _post_payout(sandbox, body)

    assert replay.status_code == 422
    assert replay.json()["error"]["code"] == "payout_rejected"
    assert SandboxIdempotencyKey.objects.get().status_code == 422


def test_the_header_decides_before_the_field(sandbox):
    body = _payout_body(sandbox_behaviour="never_settle")

    response = _post_payout(sandbox, body, **{"Sandbox-Behaviour": "fail"})

    assert SandboxPayout.objects.get(
        provider_reference=response.json()["id"]
    ).behaviour == ("fail")


def test_an_unknown_behaviour_is_a_bad_request(sandbox):
    response = _post_payout(sandbox, _payout_body(sandbox_behaviour="explode"))

    assert response.status_code == 400


def test_an_unknown_payout_is_not_found(sandbox):
    assert sandbox.call("GET", "payouts/po_nothing").status_code == 404


def test_returning_a_payout_that_was_never_paid_is_refused(sandbox):
    payout = _post_payout(sandbox, _payout_body()).json()

    response = sandbox.call("POST", f"control/payouts/{payout['id']}/return")

    assert response.status_code == 409


def _statement(sandbox, day):
    response = sandbox.call("GET", f"settlements/{day}.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    return response.text


def _money_moved_on_1_may():
    with time_machine.travel("2024-05-01 08:00:00Z", tick=False):
        paid = sandbox_payout_create(
            reference="r1",
            amount=5_000,
            currency="EUR",
            destination_label="x",
            behaviour="never_settle",
        )
        sandbox_payout_settle(provider_reference=paid.provider_reference)
        sandbox_payout_return(provider_reference=paid.provider_reference)
        deposit = sandbox_deposit_create(
            reference="r2", amount=2_000, currency="GBP", behaviour="never_settle"
        )
        sandbox_deposit_settle(provider_reference=deposit.provider_reference)
        sandbox_deposit_charge_back(provider_reference=deposit.provider_reference)
    return paid, deposit


def test_the_settlement_statement_lists_every_money_movement_of_the_day(sandbox):
    paid, deposit = _money_moved_on_1_may()

    text = _statement(sandbox, "2024-05-01")

    assert text.splitlines() == [
        "provider_reference,type,amount,currency,status,settled_at",
        f"{paid.provider_reference},payout,5000,EUR,paid,2024-05-01T08:00:00Z",
        f"{paid.provider_reference},payout_return,5000,EUR,returned,"
        "2024-05-01T08:00:00Z",
        f"{deposit.provider_reference},deposit,2000,GBP,succeeded,2024-05-01T08:00:00Z",
        f"{deposit.provider_reference},chargeback,2000,GBP,charged_back,"
        "2024-05-01T08:00:00Z",
    ]
    assert _statement(sandbox, "2024-04-30").splitlines() == [
        "provider_reference,type,amount,currency,status,settled_at"
    ]


def test_a_planted_amount_difference_shows_in_the_statement(sandbox):
    paid, _ = _money_moved_on_1_may()

    sandbox.control(
        "discrepancies",
        kind="amount_differs",
        provider_reference=paid.provider_reference,
        amount=4_999,
    )

    rows = list(csv.DictReader(io.StringIO(_statement(sandbox, "2024-05-01"))))
    assert [row["amount"] for row in rows if row["type"] == "payout_return"] == ["4999"]


def test_a_planted_missing_line_is_left_out(sandbox):
    _, deposit = _money_moved_on_1_may()

    sandbox.control(
        "discrepancies",
        kind="missing_line",
        provider_reference=deposit.provider_reference,
    )

    rows = list(csv.DictReader(io.StringIO(_statement(sandbox, "2024-05-01"))))
    assert [row["type"] for row in rows] == ["payout", "payout_return", "deposit"]


def test_a_planted_unknown_line_appears_on_its_day(sandbox):
    planted = sandbox.control(
        "discrepancies", kind="unknown_line", day="2024-05-02", amount=777
    ).json()

    rows = list(csv.DictReader(io.StringIO(_statement(sandbox, "2024-05-02"))))
    assert rows == [
        {
            "provider_reference": planted["provider_reference"],
            "type": "payout",
            "amount": "777",
            "currency": "EUR",
            "status": "paid",
            "settled_at": "2024-05-02T12:00:00Z",
        }
    ]
