"""The same webhook delivered concurrently is applied once (PostgreSQL)."""

import json
import threading
import time

import pytest
import requests

from finance.models import Posting, WebhookDelivery, WebhookEvent
from finance.services.payouts import payout_accept
from finance.states import PayoutState
from sandbox.services import sign
from tests.factories import make_payout, make_provider_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_the_same_event_delivered_by_several_threads_is_applied_once(sandbox):
    payout = payout_accept(
        payout_id=make_payout().pk, provider_reference="po_1", via="test"
    )
    postings_before = Posting.objects.count()
    body = json.dumps(make_provider_event(payout, "payout.paid")).encode()
    headers = {
        "Content-Type": "application/json",
        "Provider-Signature": sign(
            secret=sandbox.webhook_secret, body=body, timestamp=int(time.time())
        ),
    }
    start = threading.Barrier(6)
    outcomes = []

    def deliver():
        start.wait()
        response = requests.post(
            sandbox.webhook_url, data=body, headers=headers, timeout=30
        )
        outcomes.append((response.status_code, response.json()["outcome"]))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    payout.refresh_from_db()
    assert sorted(outcomes) == [(200, "applied")] + [(200, "duplicate")] * 5
    assert payout.state == PayoutState.PAID
    assert Posting.objects.count() == postings_before + 2
    assert WebhookEvent.objects.count() == 1
    # Each loser was stopped by the event id's unique index, not by luck.
    duplicates = WebhookDelivery.objects.filter(outcome="duplicate")
    assert set(duplicates.values_list("error", flat=True)) == {"event already applied"}
    assert WebhookDelivery.objects.count() == 6
