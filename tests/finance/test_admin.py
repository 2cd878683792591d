import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from finance.admin.common import EstimatedCountPaginator
from finance.models import (
    Account,
    Customer,
    Deposit,
    DepositTransition,
    LedgerTransaction,
    Payout,
    PayoutAttempt,
    PayoutTransition,
    Posting,
    WithdrawalTransition,
)
from tests.factories import (
    make_customer,
    make_deposit,
    make_payout,
    make_webhook_delivery,
)

pytestmark = pytest.mark.django_db

FINANCE_MODELS = [
    model for model in admin.site._registry if model._meta.app_label == "finance"
]
LEDGER_ROWS = [
    Account,
    LedgerTransaction,
    Posting,
    DepositTransition,
    WithdrawalTransition,
    PayoutTransition,
    PayoutAttempt,
]


def _url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def paid_payout():
    """A paid payout with one accepted attempt and the webhook that paid it."""
    payout = make_payout(pay=True, provider_reference="po_admin_42")
    PayoutAttempt.objects.create(
        payout=payout, number=1, outcome="accepted", http_status=201
    )
    make_webhook_delivery(
        event_id="evt_admin_1",
        outcome="applied",
        applied=True,
        operation_kind="payout",
        operation_id=payout.pk,
        payload={"id": "evt_admin_1", "type": "payout.paid"},
    )
    return payout


def test_it_registers_every_finance_model():
    from django.apps import apps

    registered = {model._meta.model_name for model in FINANCE_MODELS}

    for model in apps.get_app_config("finance").get_models():
        if not model._meta.model_name.startswith("historical"):
            assert model._meta.model_name in registered, model


def test_every_list_and_page_renders_with_data(admin_client, paid_payout):
    make_deposit()

    for model in FINANCE_MODELS:
        response = admin_client.get(_url(model, "changelist"))
        assert response.status_code == 200, model
        record = model._default_manager.order_by("pk").first()
        assert record is not None, model
        response = admin_client.get(_url(model, "change", record.pk))
        assert response.status_code == 200, model


def test_the_payout_page_links_withdrawal_attempts_and_transitions(
    admin_client, paid_payout
):
    response = admin_client.get(_url(Payout, "change", paid_payout.pk))

    page = response.content.decode()
    assert (
        _url(type(paid_payout.withdrawal), "change", paid_payout.withdrawal_id) in page
    )
    attempt = paid_payout.attempts.get()
    assert _url(PayoutAttempt, "change", attempt.pk) in page
    paid_tx = LedgerTransaction.objects.get(
        idempotency_key=f"payout:{paid_payout.pk}:paid"
    )
    assert _url(LedgerTransaction, "change", paid_tx.pk) in page
    assert "test paid" in page  # the reason of the paid transition, inline


def test_the_customer_page_leads_to_wallet_account_and_postings(
    admin_client, paid_payout
):
    wallet = paid_payout.wallet

    customer_page = admin_client.get(_url(Customer, "change", wallet.customer_id))
    wallet_page = admin_client.get(_url(type(wallet), "change", wallet.pk))

    assert _url(type(wallet), "change", wallet.pk) in customer_page.content.decode()
    page = wallet_page.content.decode()
    assert _url(Account, "change", wallet.account_id) in page
    assert f"account__id__exact={wallet.account_id}" in page


def test_the_deposit_page_links_its_ledger_transaction(admin_client):
    deposit = make_deposit(succeed=True)
    credit = LedgerTransaction.objects.get(
        idempotency_key=f"deposit:{deposit.pk}:credit"
    )

    response = admin_client.get(_url(Deposit, "change", deposit.pk))

    assert _url(LedgerTransaction, "change", credit.pk) in response.content.decode()


def test_a_delivery_page_links_its_event_and_operation(admin_client, paid_payout):
    from finance.models import WebhookDelivery, WebhookEvent

    delivery = WebhookDelivery.objects.get(event_id="evt_admin_1")
    event = WebhookEvent.objects.get(event_id="evt_admin_1")

    response = admin_client.get(_url(WebhookDelivery, "change", delivery.pk))

    page = response.content.decode()
    assert _url(WebhookEvent, "change", event.pk) in page
    assert _url(Payout, "change", paid_payout.pk) in page


def test_a_delivery_payload_is_shown_redacted(admin_client):
    from finance.models import WebhookDelivery

    delivery = make_webhook_delivery(
        event_id="evt_secret",
        payload={
            "data": {"note": "card 4111 1111 1111 1111"},
            "signing_secret": "whsec_do_not_show",
        },
    )

    response = admin_client.get(_url(WebhookDelivery, "change", delivery.pk))

    page = response.content.decode()
    assert "4111 1111 1111 1111" not in page
    assert "whsec_do_not_show" not in page
    assert "[redacted]" in page


def test_search_finds_a_payout_by_provider_reference(admin_client, paid_payout):
    other = make_payout(accept=True, provider_reference="po_someone_else")

    response = admin_client.get(_url(Payout, "changelist"), {"q": "po_admin_42"})

    shown = list(response.context["cl"].result_list)
    assert shown == [paid_payout]
    assert other not in shown


def test_search_finds_a_customer_by_email_whatever_its_case(admin_client):
    wanted = make_customer(email="Ada.Lovelace@example.com")
    make_customer(email="someone@example.com")

    response = admin_client.get(
        _url(Customer, "changelist"), {"q": "ada.lovelace@EXAMPLE.com"}
    )

    assert list(response.context["cl"].result_list) == [wanted]


def test_search_by_a_number_matches_ids_not_text(admin_client):
    deposit = make_deposit()

    response = admin_client.get(_url(Deposit, "changelist"), {"q": str(deposit.pk)})
    too_long = admin_client.get(_url(Deposit, "changelist"), {"q": "9" * 30})

    assert list(response.context["cl"].result_list) == [deposit]
    assert too_long.status_code == 200
    assert list(too_long.context["cl"].result_list) == []


def test_the_state_filter_narrows_deposits(admin_client):
    pending = make_deposit()
    settled = make_deposit(succeed=True)

    response = admin_client.get(_url(Deposit, "changelist"), {"state": "pending"})

    shown = list(response.context["cl"].result_list)
    assert pending in shown
    assert settled not in shown


def test_the_currency_filter_narrows_postings(admin_client):
    make_deposit(succeed=True)
    from tests.factories import make_wallet

    make_deposit(wallet=make_wallet(currency="USD"), succeed=True)

    response = admin_client.get(_url(Posting, "changelist"), {"currency": "USD"})

    shown = list(response.context["cl"].result_list)
    assert shown
    assert {posting.currency for posting in shown} == {"USD"}


@pytest.mark.parametrize("model", LEDGER_ROWS, ids=lambda m: m.__name__)
def test_a_superuser_cannot_add_change_or_delete_ledger_rows(
    admin_client, paid_payout, model
):
    record = model.objects.order_by("pk").first()

    add = admin_client.post(_url(model, "add"), {})
    change = admin_client.post(_url(model, "change", record.pk), {})
    delete = admin_client.post(_url(model, "delete", record.pk), {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (
        403,
        403,
        403,
    )
    assert model.objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize("model", [Deposit, Payout], ids=lambda m: m.__name__)
def test_money_never_moves_by_editing_an_operation(admin_client, paid_payout, model):
    record = model.objects.order_by("pk").first()
    state = record.state

    change = admin_client.post(
        _url(model, "change", record.pk), {"state": "failed", "amount": "1"}
    )
    delete = admin_client.post(_url(model, "delete", record.pk), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    assert admin_client.post(_url(model, "add"), {}).status_code == 403
    record.refresh_from_db()
    assert record.state == state


def test_a_contact_correction_keeps_its_reason_in_history(admin_client):
    customer = make_customer(email="old@example.com", full_name="Old Name")

    response = admin_client.post(
        _url(Customer, "change", customer.pk),
        {
            "email": "new@example.com",
            "full_name": "New Name",
            "change_reason": "customer wrote in, ticket OPS-1",
        },
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "new@example.com"
    latest = customer.history.latest()
    assert latest.history_change_reason == "customer wrote in, ticket OPS-1"


def test_a_contact_correction_without_a_reason_is_refused(admin_client):
    customer = make_customer(email="keep@example.com")

    response = admin_client.post(
        _url(Customer, "change", customer.pk),
        {"email": "changed@example.com", "full_name": "X"},
    )

    assert response.status_code == 200  # the form again, with its error
    customer.refresh_from_db()
    assert customer.email == "keep@example.com"


def test_age_in_state_is_shown_in_the_operators_time_zone(admin_client):
    make_deposit()
    admin_client.cookies["operator_tz"] = "Asia/Tokyo"

    response = admin_client.get(_url(Deposit, "changelist"))

    assert re.search(
        r'title="since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST"', response.content.decode()
    )


def _counts_over_postings(queries):
    return [
        query["sql"]
        for query in queries
        if "COUNT(" in query["sql"].upper() and '"finance_posting"' in query["sql"]
    ]


def test_the_posting_list_counts_no_more_than_a_page_cap(admin_client, paid_payout):
    with CaptureQueriesContext(connection) as queries:
        # _facets asks for counts per filter choice; they stay off here.
        response = admin_client.get(_url(Posting, "changelist"), {"_facets": ""})

    assert response.status_code == 200
    counts = _counts_over_postings(queries.captured_queries)
    # A small table is counted exactly, but only over a LIMITed subquery.
    assert counts
    for sql in counts:
        assert re.search(r"LIMIT \d+\) subquery", sql), sql


@pytest.mark.postgres
def test_a_big_posting_table_is_not_counted_at_all(
    admin_client, paid_payout, monkeypatch
):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE finance_posting")
    # What a 10M-row table looks like to the paginator, on a few rows.
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 1)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(_url(Posting, "changelist"))

    assert response.status_code == 200
    assert _counts_over_postings(queries.captured_queries) == []
    assert "about " in response.content.decode()


def test_a_viewer_reads_every_finance_page(client, paid_payout):
    from security.roles import VIEWER
    from security.services import roles_sync
    from tests.conftest import log_in_verified
    from tests.factories import make_staff

    roles_sync(apply=True)
    log_in_verified(client, make_staff(roles=[VIEWER]))

    for model in FINANCE_MODELS:
        record = model._default_manager.order_by("pk").first()
        assert client.get(_url(model, "changelist")).status_code == 200, model
        assert client.get(_url(model, "change", record.pk)).status_code == 200, model


def test_the_received_filter_keeps_recent_deliveries(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    from finance.models import WebhookDelivery

    recent = make_webhook_delivery(event_id="evt_recent")
    old = make_webhook_delivery(
        event_id="evt_old", received_at=timezone.now() - timedelta(days=3)
    )

    response = admin_client.get(_url(WebhookDelivery, "changelist"), {"recent": "24h"})

    shown = list(response.context["cl"].result_list)
    assert recent in shown
    assert old not in shown
