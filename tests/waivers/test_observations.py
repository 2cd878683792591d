from datetime import UTC, datetime

import pytest
import time_machine

from security.models import AuditEntry
from tests.concurrency import run_concurrently
from waivers.fingerprints import fingerprint_key
from waivers.models import SecretObservation, SecretRotation
from waivers.selectors import secret_states
from waivers.services.observations import secrets_observe

pytestmark = pytest.mark.django_db

DAY_0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
DAY_40 = datetime(2026, 10, 11, 9, 0, tzinfo=UTC)


def observe(at):
    with time_machine.travel(at, tick=False):
        return secrets_observe(source="test")


def observation(name):
    return SecretObservation.objects.get(name=name)


def test_a_first_observation_is_no_rotation_and_its_age_is_unknown(
    production_secrets,
):
    report = observe(DAY_0)

    assert "DATABASE_URL" in report.first_seen
    assert report.rotated == []
    assert not SecretRotation.objects.exists()
    first = observation("DATABASE_URL")
    assert (first.value_since, first.value_since_known) == (DAY_0, False)


def test_a_changed_value_is_recorded_as_a_rotation_with_its_time(
    production_secrets, settings
):
    observe(DAY_0)
    settings.PAGERDUTY_ROUTING_KEY = "5f4e3d2c1b0a99887766554433221100"

    report = observe(DAY_40)

    assert report.rotated == ["PAGERDUTY_ROUTING_KEY"]
    rotation = SecretRotation.objects.get()
    assert (rotation.name, rotation.detected_at, rotation.source) == (
        "PAGERDUTY_ROUTING_KEY",
        DAY_40,
        "test",
    )
    assert rotation.previous_fingerprint != rotation.fingerprint
    rotated = observation("PAGERDUTY_ROUTING_KEY")
    assert (rotated.value_since, rotated.value_since_known) == (DAY_40, True)
    entry = AuditEntry.objects.get(action="secret.rotated")
    assert entry.after == {"secret": "PAGERDUTY_ROUTING_KEY", "observed_by": "test"}


def test_an_unchanged_value_observed_again_is_no_rotation(production_secrets):
    observe(DAY_0)

    report = observe(DAY_40)

    assert report.rotated == []
    assert observation("SECRET_KEY").value_since == DAY_0
    assert observation("SECRET_KEY").last_observed_at == DAY_40


def test_a_value_that_goes_missing_and_comes_back_unchanged_is_no_rotation(
    production_secrets, settings
):
    observe(DAY_0)
    settings.SLACK_WEBHOOK_URL = ""
    observe(DAY_40)
    assert observation("SLACK_WEBHOOK_URL").status == "missing"
    settings.SLACK_WEBHOOK_URL = production_secrets["SLACK_WEBHOOK_URL"]

    report = observe(datetime(2026, 10, 12, tzinfo=UTC))

    assert report.rotated == []
    assert observation("SLACK_WEBHOOK_URL").value_since == DAY_0


def test_a_rotation_restarts_the_clock_of_the_rotation_date(
    production_secrets, settings
):
    observe(DAY_0)
    settings.PROVIDERS["acme"]["api_key"] = "sk_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    observe(DAY_40)

    with time_machine.travel(DAY_40, tick=False):
        states = {s.spec.name: s for s in secret_states()}

    assert states["PROVIDER_ACME_API_KEY"].rotation_due == datetime(
        2027, 1, 9, 9, 0, tzinfo=UTC
    )
    assert states["REDIS_URL"].rotation_due == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_nothing_stored_carries_a_value(production_secrets, settings):
    observe(DAY_0)
    settings.SECRET_KEY = "f0" * 40
    observe(DAY_40)

    stored = [
        str(value)
        for row in SecretObservation.objects.values()
        for value in row.values()
    ] + [
        str(value) for row in SecretRotation.objects.values() for value in row.values()
    ]
    for value in [*production_secrets.values(), "f0" * 40]:
        assert not any(value in text for text in stored)


def test_a_secret_key_rotation_rekeys_the_others_without_rotating_them(
    production_secrets, settings
):
    # No dedicated key: fingerprints are keyed from SECRET_KEY.
    settings.SECRET_FINGERPRINT_KEY = ""
    observe(DAY_0)
    settings.SECRET_KEY = "a1b2c3d4e5f6" * 6

    report = observe(DAY_40)

    assert report.rotated == ["SECRET_KEY"]
    assert "DATABASE_URL" in report.rekeyed
    assert observation("SECRET_KEY").value_since == DAY_40
    assert observation("DATABASE_URL").value_since == DAY_0
    assert observation("DATABASE_URL").key_id == fingerprint_key().key_id
    entry = AuditEntry.objects.get(action="secret.fingerprints_rekeyed")
    assert entry.after["key_source"] == "SECRET_KEY"


def test_after_a_rekey_a_real_change_is_recognised_again(production_secrets, settings):
    settings.SECRET_FINGERPRINT_KEY = ""
    observe(DAY_0)
    settings.SECRET_KEY = "a1b2c3d4e5f6" * 6
    observe(DAY_40)
    settings.PAGERDUTY_ROUTING_KEY = "99887766554433221100ffeeddccbbaa"

    report = observe(datetime(2026, 10, 20, tzinfo=UTC))

    assert report.rotated == ["PAGERDUTY_ROUTING_KEY"]


def test_a_new_fingerprint_key_rekeys_everything_and_rotates_only_itself(
    production_secrets, settings
):
    observe(DAY_0)
    settings.SECRET_FINGERPRINT_KEY = "0123456789abcdef" * 3

    report = observe(DAY_40)

    assert report.rotated == ["SECRET_FINGERPRINT_KEY"]
    assert "SECRET_KEY" in report.rekeyed
    assert observation("SECRET_KEY").value_since == DAY_0


def test_the_check_sees_an_unrecorded_change_as_a_fresh_value(
    production_secrets, settings
):
    observe(DAY_0)
    settings.DATABASE_URL = "postgres://opsadmin:a0b1c2d3e4f5a6b7c8d9@db.internal/ops"

    with time_machine.travel(datetime(2026, 12, 15, tzinfo=UTC), tick=False):
        state = next(s for s in secret_states() if s.spec.name == "DATABASE_URL")

    assert not state.overdue
    assert state.value_since == datetime(2026, 12, 15, tzinfo=UTC)
    assert not SecretRotation.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_observers_record_one_change_once(production_secrets, settings):
    observe(DAY_0)
    settings.EMAIL_HOST_PASSWORD = "c0ffee00c0ffee11c0ffee22"
    _, failures = run_concurrently(
        lambda: secrets_observe(source="test", now=DAY_40), [()] * 4
    )

    assert failures == []
    assert SecretRotation.objects.filter(name="EMAIL_HOST_PASSWORD").count() == 1
    assert SecretObservation.objects.filter(name="EMAIL_HOST_PASSWORD").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_sightings_make_one_row_each(production_secrets):
    _, failures = run_concurrently(
        lambda: secrets_observe(source="test", now=DAY_0), [()] * 3
    )

    assert failures == []
    assert SecretObservation.objects.filter(name="SECRET_KEY").count() == 1
    assert not SecretRotation.objects.exists()


def test_the_hourly_task_records_what_it_sees(production_secrets):
    from waivers.tasks import secrets_observe as task

    with time_machine.travel(DAY_0, tick=False):
        task()

    assert observation("PAGERDUTY_ROUTING_KEY").first_observed_at == DAY_0
