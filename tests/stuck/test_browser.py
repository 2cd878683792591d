"""Safe Retry from the Stuck cases page, in headless Chromium.

The operator logs in with a password and a TOTP code the test generates;
their second factor is made stale first, so the retry goes through the
step-up prompt and is replayed after it. The provider is the sandbox,
served by the same live server.
"""

import time
from datetime import timedelta
from importlib import import_module

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from finance.states import PayoutState
from sandbox.models import SandboxPayout
from security.roles import OPERATOR
from security.services import roles_sync
from security.stepup import VERIFIED_AT_SESSION_KEY
from stuck.models import StuckCase, StuckRule
from stuck.services import stuck_detect
from tests.browser import chromium, watch_policy_violations
from tests.factories import make_payout, make_staff, totp_code
from tests.sandbox.fixtures import celery_eager, sandbox  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "correct horse battery staple"


def test_an_operator_retries_a_stuck_payout_through_the_step_up(
    live_server,
    sandbox,  # noqa: F811
    monkeypatch,
):
    for rule in import_module("stuck.migrations.0002_default_rules").DEFAULT_RULES:
        StuckRule.objects.get_or_create(name=rule["name"], defaults=rule)
    roles_sync(apply=True)
    operator = make_staff(roles=[OPERATOR])
    payout = make_payout()
    stuck_detect(now=timezone.now() + timedelta(days=1))
    case = StuckCase.objects.get(item_kind="payout", item_id=payout.pk)
    base = live_server.url
    violations: list = []
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium() as browser:
        page = browser.new_context().new_page()
        watch_policy_violations(page, into=violations)
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", operator.username)
        page.fill("#id_password", PASSWORD)
        page.click("#content-main input[type=submit]")
        page.wait_for_url("**/security/verify/**")
        page.fill("#id_token", totp_code(operator))
        page.click("#content-main input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "sessionid"]
        session = SessionStore(session_key=cookie["value"])
        session[VERIFIED_AT_SESSION_KEY] = time.time() - 3600
        session.save()

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
