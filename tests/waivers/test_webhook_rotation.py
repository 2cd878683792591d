import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings as django_settings

from finance.webhooks import BadSignature, signature_verify, webhook_secrets
from sandbox.services import sign
from waivers.selectors import gate_evaluate

OLD = "whsec_1f2e3d4c5b6a79881f2e3d4c5b6a7988"
NEW = "whsec_a9b8c7d6e5f40312a9b8c7d6e5f40312"
UNTIL = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BODY = json.dumps({"id": "evt_1", "type": "deposit.succeeded"}).encode()


@pytest.fixture
def rotating(settings):
    """The acme provider has switched to NEW; OLD verifies until UNTIL."""
    settings.PROVIDERS = {
        "acme": {
            "base_url": "https://acme.invalid/",
            "api_key": "k",
            "webhook_secret": NEW,
        }
    }
    settings.PROVIDER_WEBHOOK_SECRETS_PREVIOUS = {
        "acme": {"secret": OLD, "until": UNTIL}
    }


def delivery_verifies(secret, at: datetime) -> bool:
    """A delivery signed with ``secret`` at ``at``, checked on arrival."""
    with time_machine.travel(at, tick=False):
        timestamp = int(at.timestamp())
        header = sign(secret=secret, body=BODY, timestamp=timestamp)
        try:
            signature_verify(
                header=header,
                body=BODY,
                secrets=webhook_secrets("acme"),
                tolerance=300,
            )
        except BadSignature:
            return False
        return True


def test_the_old_secret_verifies_until_the_last_second_of_the_window(rotating):
    assert delivery_verifies(OLD, datetime(2026, 12, 2, 8, 59, 59, tzinfo=UTC))


def test_the_old_secret_stops_verifying_when_the_window_ends(rotating):
    assert not delivery_verifies(OLD, UNTIL)
    assert not delivery_verifies(OLD, datetime(2026, 12, 9, tzinfo=UTC))


def test_the_new_secret_verifies_during_and_after_the_window(rotating):
    assert delivery_verifies(NEW, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert delivery_verifies(NEW, datetime(2026, 12, 9, tzinfo=UTC))


def test_without_a_window_only_the_current_secret_is_offered(settings):
    settings.PROVIDERS = {
        "acme": {
            "base_url": "https://acme.invalid/",
            "api_key": "k",
            "webhook_secret": NEW,
        }
    }
    settings.PROVIDER_WEBHOOK_SECRETS_PREVIOUS = {}

    assert webhook_secrets("acme") == [NEW]


def test_the_current_secret_comes_first(rotating):
    now = datetime(2026, 12, 1, tzinfo=UTC)

    assert webhook_secrets("acme", now=now) == [NEW, OLD]


@pytest.mark.django_db
def test_the_gate_refuses_a_window_longer_than_allowed(rotating, settings):
    settings.WEBHOOK_SECRET_OVERLAP_MAX_HOURS = 12

    report = gate_evaluate(now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    webhook = [item for item in report.blocking if item.kind == "webhook"]
    assert [(item.id, item.problems) for item in webhook] == [
        ("acme", ("overlap_too_long",))
    ]


@pytest.mark.django_db
def test_the_gate_notes_a_window_that_ended_but_is_still_configured(rotating):
    report = gate_evaluate(now=datetime(2026, 12, 3, tzinfo=UTC))

    assert not [item for item in report.blocking if item.kind == "webhook"]
    notes = [item.message for item in report.notes if item.kind == "webhook"]
    assert notes == [
        "the overlap ended 2026-12-02T09:00:00+00:00: remove the previous "
        "webhook secret from the environment"
    ]


def _settings_error(env_extra, tmp_path) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "OPSADMIN_VAR_DIR": str(tmp_path),
        "PROVIDER_CODES": "sandbox",
        **env_extra,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    return result.stderr


def test_a_previous_secret_without_an_end_stops_start_up(tmp_path):
    error = _settings_error({"PROVIDER_SANDBOX_WEBHOOK_SECRET_PREVIOUS": OLD}, tmp_path)

    assert (
        "PROVIDER_SANDBOX_WEBHOOK_SECRET_PREVIOUS and "
        "PROVIDER_SANDBOX_WEBHOOK_SECRET_PREVIOUS_UNTIL are set together" in error
    )


def test_an_end_without_an_offset_stops_start_up(tmp_path):
    error = _settings_error(
        {
            "PROVIDER_SANDBOX_WEBHOOK_SECRET_PREVIOUS": OLD,
            "PROVIDER_SANDBOX_WEBHOOK_SECRET_PREVIOUS_UNTIL": "2026-12-02T09:00:00",
        },
        tmp_path,
    )

    assert "must be an ISO 8601 time with its offset" in error
