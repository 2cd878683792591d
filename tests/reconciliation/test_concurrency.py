import threading

import pytest
from django.db import connection

from reconciliation.models import DailyReport
from reconciliation.services import StatementInput, daily_report_build
from tests.reconciliation.conftest import DAY, STATEMENT, at


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_builds_of_one_day_at_once_leave_one_report(business):
    results, errors = [], []
    start = threading.Barrier(2)

    def build():
        try:
            start.wait()
            with at(30):
                results.append(
                    daily_report_build(
                        report_date=DAY,
                        statements={"sandbox": StatementInput(STATEMENT, "s.csv")},
                        send_email=False,
                    )
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result.replaced for result in results) == [False, True]
    assert DailyReport.objects.get().content_digest == results[0].content_digest
