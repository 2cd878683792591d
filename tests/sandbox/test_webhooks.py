"""The sandbox's outgoing webhooks, caught by a small loopback receiver."""

import http.server
import json
import threading
import uuid

import pytest

from finance.webhooks import signature_verify
from sandbox.models import SandboxPayout, SandboxWebhook

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """An HTTP server that records each POST and answers the next status."""

    def __init__(self, statuses):
        self.requests = []
        statuses = list(statuses)
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def events(self):
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(sandbox, settings):
    def make(*statuses):
        catcher = Receiver(statuses or [200])
        settings.SANDBOX_WEBHOOK_URL = catcher.url
        made.append(catcher)
        return catcher

    made = []
    yield make
    for catcher in made:
        catcher.close()


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
    sandbox, receiver, settings
):
    settings.SANDBOX_AUTO_SETTLE = True
    catcher = receiver()

    payout = _create_payout(sandbox)

    [(headers, body)] = catcher.requests
    event = json.loads(body)
    assert (event["type"], event["data"]["id"]) == ("payout.paid", payout["id"])
    assert event["data"]["reference"] == payout["reference"]
    signature_verify(
        header=headers["Provider-Signature"],
        body=body,
        secrets=[sandbox.webhook_secret],
        tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
    )


def test_a_payout_told_to_fail_sends_payout_failed(sandbox, receiver, settings):
    settings.SANDBOX_AUTO_SETTLE = True
    catcher = receiver()

    _create_payout(sandbox, sandbox_behaviour="fail")

    [event] = catcher.events()
    assert event["type"] == "payout.failed"
    assert event["data"]["failure_code"] == "account_closed"


def test_a_payout_told_never_to_settle_stays_processing(sandbox, receiver, settings):
    settings.SANDBOX_AUTO_SETTLE = True
    catcher = receiver()

    payout = _create_payout(sandbox, sandbox_behaviour="never_settle")

    assert catcher.requests == []
    assert SandboxPayout.objects.get(provider_reference=payout["id"]).status == (
        "processing"
    )


def test_a_refused_webhook_is_retried_and_every_try_is_logged(
    sandbox, receiver, settings
):
    settings.SANDBOX_WEBHOOK_MAX_RETRIES = 3
    catcher = receiver(500, 503, 200)
    payout = _create_payout(sandbox)

    sandbox.control(f"payouts/{payout['id']}/settle")

    webhook = SandboxWebhook.objects.get()
    assert len(catcher.requests) == 3
    assert (webhook.status, webhook.attempts) == ("delivered", 3)
    assert list(webhook.delivery_attempts.values_list("status_code", flat=True)) == [
        500,
        503,
        200,
    ]


def test_the_sandbox_gives_up_after_its_last_retry(sandbox, receiver, settings):
    settings.SANDBOX_WEBHOOK_MAX_RETRIES = 2
    receiver(500)
    payout = _create_payout(sandbox)

    sandbox.control(f"payouts/{payout['id']}/settle")

    webhook = SandboxWebhook.objects.get()
    assert (webhook.status, webhook.attempts) == ("given_up", 3)


def test_a_control_action_can_keep_the_webhook_back(sandbox, receiver):
    catcher = receiver()
    payout = _create_payout(sandbox)

    sandbox.control(f"payouts/{payout['id']}/settle", send_webhook=False)

    assert catcher.requests == []
    assert sandbox.call("GET", f"payouts/{payout['id']}").json()["status"] == "paid"
