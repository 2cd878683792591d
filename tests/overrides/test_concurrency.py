"""Two people (or two tabs) acting on one request at the same moment.

Each thread has its own database connection. A third connection holds a
row lock until both threads are queued behind it, so the two really race
instead of running one after the other.
"""

import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from finance.models import LedgerTransaction, PayoutTransition
from overrides.models import OverrideRequest
from overrides.services import override_request_approve
from security.models import AuditEntry
from security.roles import APPROVER
from tests.conftest import log_in_verified as log_in
from tests.factories import make_override, make_staff, make_stuck_payout
from tests.overrides.conftest import approve_data, approve_url, request_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@contextmanager
def row_locked(table: str, pk: int):
    """Hold ``table`` row ``pk`` locked from another connection until exit."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [pk])
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        yield
    finally:
        release.set()
        holder.join()


def _wait_until_queued(count: int) -> None:
    deadline = time.monotonic() + 10
    while _lock_waiters() < count:
        assert time.monotonic() < deadline, "the two requests never met at the lock"
        time.sleep(0.05)


def _post_in_threads(posts):
    """Start each (client, url, data) POST in its own thread; return a joiner."""
    pages = [None] * len(posts)

    def run(index, client, url, data):
        try:
            pages[index] = client.post(url, data, follow=True).content.decode()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, *post))
        for index, post in enumerate(posts)
    ]
    for thread in threads:
        thread.start()

    def join():
        for thread in threads:
            thread.join(timeout=30)
        return pages

    return join


def _executions(override, payout):
    return {
        "executed": AuditEntry.objects.filter(
            action="override.executed", target_id=str(override.pk)
        ).count(),
        "release": LedgerTransaction.objects.filter(
            idempotency_key=f"withdrawal:{payout.withdrawal_id}:release"
        ).count(),
        "to_failed": PayoutTransition.objects.filter(
            operation=payout, to_state="failed"
        ).count(),
    }


def test_two_approvers_at_once_execute_it_exactly_once(doer):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    first = log_in(Client(), make_staff(roles=[APPROVER]))
    second = log_in(Client(), make_staff(roles=[APPROVER]))
    url, data = approve_url(override), approve_data(override)

    with row_locked("overrides_overriderequest", override.pk):
        join = _post_in_threads([(first, url, data), (second, url, data)])
        _wait_until_queued(2)
    pages = join()

    assert _executions(override, payout) == {
        "executed": 1,
        "release": 1,
        "to_failed": 1,
    }
    assert OverrideRequest.objects.get(pk=override.pk).status == "executed"
    assert sum("approved and executed" in page for page in pages) == 1
    assert sum("settled meanwhile" in page for page in pages) == 1
    assert AuditEntry.objects.filter(action="override.approved").count() == 1


def test_two_executions_of_one_approval_run_it_exactly_once(doer, approver):
    payout = make_stuck_payout()
    override = make_override(target=payout, doer=doer)
    tab = log_in(Client(), approver)
    other_tab = log_in(Client(), approver, steps_ahead=1)
    override_request_approve(
        override_id=override.pk,
        approver=approver,
        request=request_of(tab, approver),
        **approve_data(override),
    )
    url = reverse("admin:overrides_overriderequest_execute", args=[override.pk])

    # The first executor claims the request, then waits for the payout; the
    # second waits for the request row the first has claimed.
    with row_locked("finance_payout", payout.pk):
        join = _post_in_threads([(tab, url, {}), (other_tab, url, {})])
        _wait_until_queued(2)
    pages = join()

    assert _executions(override, payout) == {
        "executed": 1,
        "release": 1,
        "to_failed": 1,
    }
    assert sum("approved and executed" in page for page in pages) == 1
    assert sum("Not executed: override" in page for page in pages) == 1
    assert not AuditEntry.objects.filter(action="override.failed").exists()
