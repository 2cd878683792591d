"""Tickets pushed to an external tracker: a real HTTP receiver on loopback."""

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine

from reconciliation.models import ReconciliationTicket, TicketDelivery
from reconciliation.services.tickets import (
    backoff_seconds,
    ticket_deliveries_retry,
    ticket_delivery_attempt,
)
from tests.reconciliation.scanning import break_wallet, scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

SECRET = "tracker-shared-secret"


class Receiver:
    """A tracker that answers 503 to its first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/recon"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tracker(settings, celery_eager):
    def start(fail_first=0, max_attempts=8):
        receiver = Receiver(fail_first=fail_first)
        settings.RECON_TICKET_WEBHOOK_URL = receiver.url
        settings.RECON_TICKET_WEBHOOK_SECRET = SECRET
        settings.RECON_TICKET_WEBHOOK_MAX_ATTEMPTS = max_attempts
        settings.RECON_TICKET_WEBHOOK_TIMEOUT_SECONDS = 5
        return receiver

    return start


def test_a_new_ticket_is_delivered_after_retries(books, tracker):
    break_wallet(books["alice"], by=250)

    with tracker(fail_first=2) as receiver:
        scan(settle_tickets=True)

    delivery = TicketDelivery.objects.get()
    assert delivery.status == TicketDelivery.Status.DELIVERED
    assert delivery.attempts == 3
    assert list(delivery.attempt_log.values_list("number", "http_status")) == [
        (1, 503),
        (2, 503),
        (3, 200),
    ]
    headers, body = receiver.requests[-1]
    payload = json.loads(body)
    assert payload["event"] == "ticket.opened"
    assert payload["ticket"]["id"] == ReconciliationTicket.objects.get().pk
    assert payload["ticket"]["difference"] == 250
    assert headers["X-Opsadmin-Delivery"] == str(delivery.pk)


def test_each_delivery_is_signed_with_the_shared_secret(books, tracker):
    break_wallet(books["alice"], by=250)

    with tracker() as receiver:
        scan(settle_tickets=True)

    headers, body = receiver.requests[0]
    signed = headers["X-Opsadmin-Timestamp"].encode() + b"." + body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-Opsadmin-Signature"] == f"sha256={expected}"


def test_a_delivery_that_never_succeeds_is_kept_as_failed(books, tracker):
    break_wallet(books["alice"], by=250)

    with tracker(fail_first=100, max_attempts=3) as receiver:
        scan(settle_tickets=True)

    delivery = TicketDelivery.objects.get()
    assert len(receiver.requests) == 3
    assert delivery.status == TicketDelivery.Status.FAILED
    assert delivery.last_error == "HTTP 503"


def test_a_failed_delivery_can_be_sent_again(books, tracker):
    break_wallet(books["alice"], by=250)
    with tracker(fail_first=100, max_attempts=2):
        scan(settle_tickets=True)
    delivery = TicketDelivery.objects.get()

    with tracker() as receiver:
        queued, skipped = ticket_deliveries_retry(delivery_ids=[delivery.pk])

    delivery.refresh_from_db()
    assert (queued, skipped) == (1, 0)
    assert len(receiver.requests) == 1
    assert delivery.status == TicketDelivery.Status.DELIVERED


def test_closing_a_ticket_is_delivered_too(books, tracker):
    break_wallet(books["alice"], by=250)
    with tracker() as receiver:
        scan(settle_tickets=True)
        break_wallet(books["alice"], by=-250)
        scan(settle_tickets=True)

    events = [json.loads(body)["event"] for _, body in receiver.requests]
    assert events == ["ticket.opened", "ticket.closed"]


def test_a_failed_attempt_schedules_the_next_one_with_backoff(books, settings, tracker):
    settings.RECON_TICKET_WEBHOOK_BACKOFF_SECONDS = 30
    break_wallet(books["alice"], by=250)
    with tracker(fail_first=100, max_attempts=1):
        scan(settle_tickets=True)
    delivery = TicketDelivery.objects.get()
    TicketDelivery.objects.filter(pk=delivery.pk).update(status="pending")
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    with tracker(fail_first=100), time_machine.travel(now, tick=False):
        outcome = ticket_delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.retry_in == 60  # the second attempt failed: 30s doubled
    assert delivery.next_attempt_at == now + timedelta(seconds=60)
    assert [backoff_seconds(n) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
