"""Tickets from scan findings: one per open mismatch, closed when it is gone."""

import pytest

from reconciliation.models import Finding, ReconciliationTicket
from reconciliation.services.tickets import amount_band, ticket_update
from tests.factories import make_user
from tests.reconciliation.scanning import break_wallet, scan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

Ticket = ReconciliationTicket


def test_it_opens_one_ticket_per_mismatch_with_its_links(books):
    alice = books["alice"]
    break_wallet(alice, by=250)

    result = scan(settle_tickets=True)

    ticket = Ticket.objects.get()
    assert result.tickets_opened == 1
    assert (ticket.invariant, ticket.subject_key, ticket.status) == (
        "wallet_balance",
        f"wallet:{alice.pk}",
        "open",
    )
    assert (ticket.expected, ticket.actual, ticket.difference) == (
        alice.balance,
        alice.balance + 250,
        250,
    )
    assert ticket.wallet_id == alice.pk
    assert ticket.suspect_transaction_ids
    assert ticket.observations.get().scan_id == result.scan_id


def test_a_mismatch_seen_again_is_appended_to_its_open_ticket(books):
    break_wallet(books["alice"], by=250)
    scan(settle_tickets=True)
    break_wallet(books["alice"], by=5)

    second = scan(settle_tickets=True)

    ticket = Ticket.objects.get()
    assert (second.tickets_opened, second.tickets_updated) == (0, 1)
    assert ticket.observation_count == 2
    assert ticket.observations.count() == 2
    assert ticket.difference == 255
    assert ticket.last_scan_id == second.scan_id


def test_a_ticket_whose_mismatch_is_gone_is_closed_with_a_note(books):
    break_wallet(books["alice"], by=250)
    scan(settle_tickets=True)
    break_wallet(books["alice"], by=-250)

    result = scan(settle_tickets=True)

    ticket = Ticket.objects.get()
    assert result.tickets_closed == 1
    assert ticket.status == Ticket.Status.CLOSED
    assert ticket.closed_at is not None
    assert f"deep scan {result.scan_id} found no mismatch" in ticket.close_note
    assert ticket.history.first().history_change_reason == ticket.close_note


def test_a_mismatch_back_after_its_ticket_closed_opens_a_new_ticket(books):
    break_wallet(books["alice"], by=250)
    scan(settle_tickets=True)
    break_wallet(books["alice"], by=-250)
    scan(settle_tickets=True)
    break_wallet(books["alice"], by=7)

    scan(settle_tickets=True)

    assert list(Ticket.objects.order_by("id").values_list("status", "difference")) == [
        ("closed", 250),
        ("open", 7),
    ]


def test_a_scan_of_other_checks_leaves_tickets_it_cannot_judge_open(books):
    break_wallet(books["alice"], by=250)
    scan(settle_tickets=True)
    break_wallet(books["alice"], by=-250)

    result = scan(checks=["journal", "platform"], settle_tickets=True)

    assert result.tickets_closed == 0
    assert Ticket.objects.get().status == Ticket.Status.OPEN


def test_a_dry_run_leaves_tickets_alone(books):
    break_wallet(books["alice"], by=250)

    scan(settle_tickets=False)

    assert not Ticket.objects.exists()
    assert Finding.objects.get().ticket is None


def test_priority_follows_the_amount_band(settings):
    settings.RECON_TICKET_PRIORITY_BANDS = [1_000, 10_000, 100_000]

    assert [amount_band(d) for d in (999, -1_000, 10_000, -250_000)] == [
        Ticket.Priority.LOW,
        Ticket.Priority.MEDIUM,
        Ticket.Priority.HIGH,
        Ticket.Priority.CRITICAL,
    ]


def test_priority_moves_with_the_band_but_keeps_an_operators_choice(books, settings):
    settings.RECON_TICKET_PRIORITY_BANDS = [1_000, 10_000, 100_000]
    break_wallet(books["alice"], by=50)
    scan(settle_tickets=True)
    ticket = Ticket.objects.get()
    ticket_update(
        ticket_id=ticket.pk, actor=None, reason="customer complained", priority=4
    )

    scan(settle_tickets=True)
    assert Ticket.objects.get().priority == Ticket.Priority.CRITICAL

    break_wallet(books["alice"], by=20_000)
    scan(settle_tickets=True)
    assert Ticket.objects.get().amount_band == Ticket.Priority.HIGH
    assert Ticket.objects.get().priority == Ticket.Priority.HIGH


def test_an_operator_change_is_recorded_with_who_and_why(books):
    break_wallet(books["alice"], by=250)
    scan(settle_tickets=True)
    ticket = Ticket.objects.get()
    owner = make_user()

    ticket_update(
        ticket_id=ticket.pk,
        actor=owner,
        reason="taking this one",
        owner=owner,
        status=Ticket.Status.INVESTIGATING,
    )

    ticket.refresh_from_db()
    assert (ticket.owner, ticket.status) == (owner, "investigating")
    assert ticket.history.first().history_change_reason == "taking this one"
