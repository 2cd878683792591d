"""The sandbox's outgoing webhooks, caught by a small loopback receiver."""

import uuid

import pytest

from finance.webhooks import signature_verify
from sandbox.models import SandboxPayout, SandboxWebhook
from tests.http_receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hooks(sandbox, settings):
    """Where the sandbox sends its webhooks: answers 200 unless told."""
    catcher = Receiver()
    catcher.default_status = 200
    catcher.thread.start()
    settings.SANDBOX_WEBHOOK_URL = catcher.url + "/hook"
    yield catcher
    catcher.server.shutdown()
    catcher.server.server_close()


def _create_payout(sandbox, **fields):
    body = {
        "reference": str(uuid.uuid4()),
        "amount": 5_000,
        "currency": "EUR",
        "destination": {"label": "Sparkasse ****3000"},
        **fields,
    }
    response = sandbox.call(
        "POST", "payouts", json=body, headers={"Idempotency-Key": body["reference"]}
    )
    assert response.status_code == 201
    return response.json()


def test_an_accepted_payout_settles_by_itself_and_says_so_signed(
    sandbox, hooks, settings
):
    settings.SANDBOX_AUTO_SETTLE = True

    payout = _create_payout(sandbox)

    [request] = hooks.requests
    event = request["body"]
    assert (event["type"], event["data"]["id"]) == ("payout.paid", payout["id"])
    assert event["data"]["reference"] == payout["reference"]
    signature_verify(
        header=request["headers"]["Provider-Signature"],
        body=request["raw"],
        secrets=[sandbox.webhook_secret],
        tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
    )


def test_a_payout_told_to_fail_sends_payout_failed(sandbox, hooks, settings):
    settings.SANDBOX_AUTO_SETTLE = True

    _create_payout(sandbox, sandbox_behaviour="fail")

    [event] = hooks.bodies("/hook")
    assert event["type"] == "payout.failed"
    assert event["data"]["failure_code"] == "account_closed"


def test_a_payout_told_never_to_settle_stays_processing(sandbox, hooks, settings):
    settings.SANDBOX_AUTO_SETTLE = True

    payout = _create_payout(sandbox, sandbox_behaviour="never_settle")

    assert hooks.requests == []
    assert SandboxPayout.objects.get(provider_reference=payout["id"]).status == (
        "processing"
    )


def test_a_refused_webhook_is_retried_and_every_try_is_logged(sandbox, hooks, settings):
    settings.SANDBOX_WEBHOOK_MAX_RETRIES = 3
    hooks.answer(500, 503)
    payout = _create_payout(sandbox)

    sandbox.control(f"payouts/{payout['id']}/settle")

    webhook = SandboxWebhook.objects.get()
    assert len(hooks.requests) == 3
    assert (webhook.status, webhook.attempts) == ("delivered", 3)
    assert list(webhook.delivery_attempts.values_list("status_code", flat=True)) == [
        500,
        503,
        200,
    ]


def test_the_sandbox_gives_up_after_its_last_retry(sandbox, hooks, settings):
    settings.SANDBOX_WEBHOOK_MAX_RETRIES = 2
    hooks.default_status = 500
    payout = _create_payout(sandbox)

    sandbox.control(f"payouts/{payout['id']}/settle")

    webhook = SandboxWebhook.objects.get()
    assert (webhook.status, webhook.attempts) == ("given_up", 3)


def test_a_control_action_can_keep_the_webhook_back(sandbox, hooks):
    payout = _create_payout(sandbox)

    sandbox.control(f"payouts/{payout['id']}/settle", send_webhook=False)

    assert hooks.requests == []
    assert sandbox.call("GET", f"payouts/{payout['id']}").json()["status"] == "paid"
