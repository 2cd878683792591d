"""A real headless Chromium logs in with a password and a TOTP code."""

from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import AuditEntry
from tests.browser import chromium, watch_policy_violations
from tests.factories import make_staff

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_it_logs_in_with_a_totp_code_and_reaches_the_admin_index(live_server):
    user = make_staff(username="ada", superuser=True)
    # Everything from the database first: Playwright's loop makes the ORM
    # refuse to run in this thread afterwards.
    device = TOTPDevice.objects.get(user=user)
    app = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)

    with chromium() as browser:
        page = browser.new_page()
        violations = watch_policy_violations(page)
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "ada")
        page.fill("#id_password", "correct horse battery staple")
        page.click("input[type=submit]")
        page.wait_for_url("**/security/verify/**")
        page.fill("#id_token", str(app.token()).zfill(6))
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        heading = page.text_content("#content h1")
        users_link = page.is_visible("a[href='/admin/auth/user/']")
        # A list and a form of the admin: no script or style the policy blocks.
        page.click("a[href='/admin/auth/user/']")
        page.click("#result_list tbody th a")
        page.wait_for_selector("#user_form")

    assert heading == "Operations"
    assert users_link
    assert violations == []


def test_it_enrols_a_new_staff_user_from_the_page_alone(live_server):
    make_staff(username="bob", enrolled=False)

    with chromium() as browser:
        page = browser.new_page()
        violations = watch_policy_violations(page)
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "bob")
        page.fill("#id_password", "correct horse battery staple")
        page.click("input[type=submit]")
        page.wait_for_url("**/security/enrol/**")
        qr_drawn = page.is_visible(".security-qr svg")
        secret = page.text_content("#totp-secret").replace(" ", "")
        page.fill("#id_token", str(TOTP(b32decode(secret)).token()).zfill(6))
        page.click("input[type=submit]")
        codes = page.locator("#backup-codes code").all_text_contents()
        page.click("text=Continue")
        page.wait_for_url(f"{live_server.url}/admin/")

    assert qr_drawn
    assert len(codes) == 10
    assert violations == []
    assert AuditEntry.objects.filter(action="mfa.enrolled").count() == 1
