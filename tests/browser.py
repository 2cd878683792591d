"""Headless Chromium for the browser tests: Debian's binary, driven by Playwright.

Playwright's own browser download does not work here (and is not needed):
``/usr/bin/chromium`` comes from Debian's package (scripts/ensure-test-tools).
"""

import time
from contextlib import contextmanager, suppress

from django.core.exceptions import SynchronousOnlyOperation
from django.db import connection

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium():
    """Headless Chromium.

    Playwright's sync API keeps an event loop in this thread, so Django
    refuses synchronous ORM calls while it runs unless the test sets
    DJANGO_ALLOW_ASYNC_UNSAFE (they are plain synchronous calls all the
    same). Such calls get a connection of their own, closed here so the test
    database can be dropped afterwards.
    """
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()
                _close_connection()
    finally:
        _close_connection()


def _close_connection() -> None:
    # Inside Playwright's loop the ORM has a connection of its own, opened
    # only if the test allowed it; where it did not, there is none to close.
    with suppress(SynchronousOnlyOperation):
        connection.close()


def watch_policy_violations(page, into: list[str] | None = None) -> list[str]:
    """Collect the console messages of scripts or styles the CSP blocked.

    ``into`` gathers several pages' messages in one list.
    """
    violations: list[str] = [] if into is None else into
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return violations


def admin_log_in(browser, base_url: str, user, *, violations: list, steps_ahead=0):
    """A new page logged in as ``user`` (a factory user: its known password)
    with a TOTP code the test makes; ``steps_ahead=1`` for a second code
    within one 30 s step."""
    from tests.factories import PASSWORD, totp_code

    page = browser.new_context().new_page()
    watch_policy_violations(page, into=violations)
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#content-main input[type=submit]")
    page.wait_for_url("**/security/verify/**")
    page.fill("#id_token", totp_code(user, steps_ahead=steps_ahead))
    page.click("#content-main input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")
    return page


def make_step_up_stale(page) -> None:
    """Age the page's session past STEP_UP_MAX_AGE_SECONDS, as time would."""
    from django.contrib.sessions.backends.db import SessionStore

    from security.stepup import VERIFIED_AT_SESSION_KEY

    (cookie,) = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    session = SessionStore(session_key=cookie["value"])
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 3600
    session.save()
