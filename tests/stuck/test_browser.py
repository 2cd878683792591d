"""Safe Retry from the Stuck cases page, in headless Chromium.

The operator logs in with a password and a TOTP code the test generates;
their second factor is made stale first, so the retry goes through the
step-up prompt and is replayed after it. The provider is the sandbox,
served by the same live server.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from finance.states import PayoutState
from sandbox.models import SandboxPayout
from security.roles import OPERATOR
from security.services import roles_sync
from stuck.models import StuckCase
from stuck.services import stuck_detect
from tests.browser import admin_log_in, chromium, make_step_up_stale
from tests.factories import make_payout, make_staff, totp_code
from tests.sandbox.fixtures import celery_eager, sandbox  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def test_an_operator_retries_a_stuck_payout_through_the_step_up(
    live_server,
    sandbox,  # noqa: F811
    default_rules,
    monkeypatch,
):
    roles_sync(apply=True)
    operator = make_staff(roles=[OPERATOR])
    payout = make_payout()
    stuck_detect(now=timezone.now() + timedelta(days=1))
    case = StuckCase.objects.get(item_kind="payout", item_id=payout.pk)
    base = live_server.url
    violations: list = []
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium() as browser:
        page = admin_log_in(browser, base, operator, violations=violations)
        make_step_up_stale(page)

        page.goto(f"{base}/admin/stuck/stuckcase/")
        listed = page.inner_text("#result_list")
        page.check(f"input[name=_selected_action][value='{case.pk}']")
        page.select_option("select[name=action]", "safe_retry_selected")
        page.click("button[name=index]")
        page.wait_for_url("**/security/step-up/**")
        page.fill("#id_token", totp_code(operator, steps_ahead=1))
        page.click("#content-main input[type=submit]")
        page.click("#content-main input[value=Continue]")
        page.wait_for_selector(".messagelist")
        message = page.inner_text(".messagelist")

    assert f"Payout {payout.pk}" in listed
    assert f"Case {case.pk}: resubmitted: attempt 1 accepted" in message
    payout.refresh_from_db()
    assert payout.state == PayoutState.PROCESSING
    assert SandboxPayout.objects.get().reference == str(payout.reference)
    assert case.activities.get().actor == operator
    assert violations == []
