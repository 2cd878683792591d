"""A day of business on 2026-03-02 and the sandbox statement that goes with it."""

import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine

from finance.services.deposits import deposit_succeed
from tests.factories import make_deposit, make_payout, make_wallet

DAY = date(2026, 3, 2)
MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

HEADER = "provider_reference,type,amount,currency,status,settled_at\n"


def at(hours: float):
    return time_machine.travel(MORNING + timedelta(hours=hours), tick=False)


@pytest.fixture
def business():
    """Operations of the day, each named by what the statement will say."""
    with time_machine.travel(MORNING - timedelta(days=1), tick=False):
        wallet = make_wallet(balance=100_000)
    ops = {}
    with at(1):
        ops["dep_a"] = make_deposit(
            wallet=wallet, amount=10_000, provider_reference="dep-a"
        )
        deposit_succeed(deposit_id=ops["dep_a"].pk, via="test", reason="settled")
        ops["dep_b"] = make_deposit(
            wallet=wallet, amount=2_000, provider_reference="dep-b"
        )
        deposit_succeed(deposit_id=ops["dep_b"].pk, via="test", reason="settled")
    with at(2):
        ops["po_1"] = make_payout(
            wallet=wallet, amount=5_000, pay=True, provider_reference="po-1"
        )
    with at(3):
        ops["po_2"] = make_payout(
            wallet=wallet, amount=7_000, pay=True, provider_reference="po-2"
        )
    with at(4):
        ops["po_3"] = make_payout(
            wallet=wallet, amount=1_500, pay=True, provider_reference="po-3"
        )
    with at(5):
        ops["po_4"] = make_payout(
            wallet=wallet, amount=900, accept=True, provider_reference="po-4"
        )
    return ops


STATEMENT = HEADER + (
    "dep-a,deposit,10000,EUR,settled,2026-03-02T10:00:05Z\n"
    "dep-b,deposit,2000,USD,settled,2026-03-02T10:00:09Z\n"
    "po-1,payout,5000,EUR,settled,2026-03-02T11:00:00Z\n"
    "po-2,payout,7100,EUR,settled,2026-03-02T12:00:00Z\n"
    "po-4,payout,900,EUR,settled,2026-03-02T15:00:00Z\n"
    "po-ghost,payout,3000,EUR,settled,2026-03-02T16:00:00Z\n"
)


@pytest.fixture
def provider_api(settings):
    """A provider on loopback that serves one statement and records requests."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path == f"/v1/settlements/{DAY}.csv":
                body, status = STATEMENT.encode(), 200
            else:
                body, status = b"not found", 404
            self.send_response(status)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PROVIDERS = {
        "sandbox": {
            "base_url": f"http://127.0.0.1:{server.server_port}/v1/",
            "api_key": "sk_test_statement",
            "webhook_secret": "whsec_unused",
        }
    }
    yield seen
    server.shutdown()
    server.server_close()


# --- deep scan ---


@pytest.fixture
def books():
    """One of every operation state that moves money, in EUR and USD."""
    from tests.reconciliation.scanning import build_books

    return build_books()


@pytest.fixture
def celery_eager(monkeypatch):
    """Celery tasks run in the calling thread, as soon as they are queued.

    Eager retries run at once, one after the other (the countdown is not
    waited for), which is how the webhook tests see every attempt.
    """
    from opsadmin.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
