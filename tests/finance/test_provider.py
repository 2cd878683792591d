"""The provider client against the sandbox provider, over real HTTP."""

import threading
import uuid
from datetime import date

import pytest
import time_machine

from finance.provider import (
    ProviderAuthFailed,
    ProviderConflict,
    ProviderIdempotencyMismatch,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    provider_client,
)
from sandbox.models import SandboxIdempotencyKey, SandboxPayout
from sandbox.services import sandbox_payout_settle
from tests.http_receiver import Receiver, closed_port_url

pytestmark = pytest.mark.django_db(transaction=True)


def _create(client, key="key-1", amount=5_000, **fields):
    values = {
        "idempotency_key": key,
        "reference": str(uuid.uuid4()),
        "amount": amount,
        "currency": "EUR",
        "destination_label": "Sparkasse ****3000",
    }
    values.update(fields)
    return client.create_payout(**values)


def test_it_creates_a_payout_the_provider_reports_processing(sandbox):
    answer = _create(provider_client("sandbox"))

    assert answer.status == "processing"
    assert answer.http_status == 201
    assert SandboxPayout.objects.get().provider_reference == answer.provider_reference


def test_the_same_key_and_parameters_replay_the_stored_answer(sandbox):
    client = provider_client("sandbox")
    reference = str(uuid.uuid4())

    first = _create(client, reference=reference)
    second = _create(client, reference=reference)

    assert second.provider_reference == first.provider_reference
    assert (first.replayed, second.replayed) == (False, True)
    assert SandboxPayout.objects.count() == 1


def test_the_same_key_with_other_parameters_is_refused(sandbox):
    client = provider_client("sandbox")
    reference = str(uuid.uuid4())
    _create(client, reference=reference, amount=5_000)

    with pytest.raises(ProviderIdempotencyMismatch) as refused:
        _create(client, reference=reference, amount=5_001)

    assert refused.value.http_status == 422
    assert SandboxPayout.objects.count() == 1


def test_a_second_request_while_the_first_is_in_flight_gets_a_conflict(
    sandbox, settings
):
    settings.SANDBOX_TIMEOUT_SECONDS = 2
    reference = str(uuid.uuid4())
    sandbox.control("plans", reference=reference, behaviour="timeout")
    slow = threading.Thread(
        target=_create,
        args=(provider_client("sandbox"),),
        kwargs={"reference": reference},
    )
    slow.start()
    while not SandboxIdempotencyKey.objects.filter(key="key-1").exists():
        threading.Event().wait(0.01)

    with pytest.raises(ProviderConflict):
        _create(provider_client("sandbox"), reference=reference)

    slow.join()
    assert SandboxPayout.objects.count() == 1


def test_a_slow_answer_is_a_timeout_and_the_payout_exists_anyway(sandbox, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    reference = str(uuid.uuid4())
    sandbox.control("plans", reference=reference, behaviour="timeout")

    with pytest.raises(ProviderTimeout):
        _create(provider_client("sandbox"), reference=reference)

    assert SandboxPayout.objects.get().reference == reference
    sandbox.wait_until_answered("key-1")


def test_a_rejection_carries_the_providers_error_code(sandbox):
    reference = str(uuid.uuid4())
    sandbox.control("plans", reference=reference, behaviour="reject")

    with pytest.raises(ProviderRejected) as rejected:
        _create(provider_client("sandbox"), reference=reference)

    assert (rejected.value.http_status, rejected.value.code) == (
        422,
        "payout_rejected",
    )
    assert not SandboxPayout.objects.exists()


def test_a_wrong_api_key_is_an_authentication_failure(sandbox, settings):
    settings.PROVIDERS = {
        **settings.PROVIDERS,
        "other": {**settings.PROVIDERS["sandbox"], "api_key": "sk_test_wrong"},
    }

    with pytest.raises(ProviderAuthFailed):
        provider_client("other").get_payout("po_1")


def _point_at(settings, url):
    settings.PROVIDERS = {"sandbox": {**settings.PROVIDERS["sandbox"], "base_url": url}}


def test_a_closed_port_is_unavailable(settings):
    _point_at(settings, closed_port_url())

    with pytest.raises(ProviderUnavailable):
        provider_client("sandbox").get_payout("po_1")


def test_a_server_error_is_unavailable_and_retryable(settings):
    server = Receiver()
    server.default_status = 503
    server.thread.start()
    _point_at(settings, server.url)

    with pytest.raises(ProviderUnavailable) as unavailable:
        _create(provider_client("sandbox"))

    server.server.shutdown()
    server.server.server_close()
    assert unavailable.value.http_status == 503
    assert unavailable.value.retryable
    assert server.requests[0]["headers"]["Idempotency-Key"] == "key-1"


def test_it_reads_a_payouts_status(sandbox):
    created = _create(provider_client("sandbox"))
    sandbox_payout_settle(
        provider_reference=created.provider_reference, send_webhook=False
    )

    answer = provider_client("sandbox").get_payout(created.provider_reference)

    assert answer.status == "paid"


def test_it_creates_a_deposit_intent(sandbox):
    reference = str(uuid.uuid4())

    answer = provider_client("sandbox").create_deposit(
        idempotency_key="deposit-1", reference=reference, amount=2_000, currency="EUR"
    )

    assert (answer.status, answer.reference) == ("pending", reference)
    assert answer.provider_reference.startswith("pi_")


def test_it_fetches_a_days_settlement(sandbox):
    with time_machine.travel("2024-05-01 09:30:00Z", tick=False):
        created = _create(provider_client("sandbox"))
        sandbox_payout_settle(
            provider_reference=created.provider_reference, send_webhook=False
        )

    lines = provider_client("sandbox").fetch_settlement(date(2024, 5, 1))

    assert [(line.provider_reference, line.type, line.amount) for line in lines] == [
        (created.provider_reference, "payout", 5_000)
    ]
    assert lines[0].settled_at.isoformat() == "2024-05-01T09:30:00+00:00"
    assert provider_client("sandbox").fetch_settlement(date(2024, 5, 2)) == []


def test_the_api_key_never_reaches_a_log_line(sandbox, caplog):
    with caplog.at_level("DEBUG"):
        _create(provider_client("sandbox"))

    assert "provider.request" in caplog.text
    assert sandbox.api_key not in caplog.text
