import pytest

from reconciliation.models import DailyReport
from reconciliation.services import StatementInput, daily_report_build
from tests.concurrency import run_concurrently
from tests.reconciliation.conftest import DAY, STATEMENT, at


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_builds_of_one_day_at_once_leave_one_report(business):
    def build():
        with at(30):
            return daily_report_build(
                report_date=DAY,
                statements={"sandbox": StatementInput(STATEMENT, "s.csv")},
                send_email=False,
            )

    results, errors = run_concurrently(build, [(), ()])

    assert errors == []
    assert sorted(result.replaced for result in results) == [False, True]
    assert DailyReport.objects.get().content_digest == results[0].content_digest
