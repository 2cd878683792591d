import json
from datetime import date
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from tests.factories import make_waiver

pytestmark = pytest.mark.django_db

TODAY = "2026-12-01 09:00:00+00:00"


def gate(*args):
    """Run ``waivers gate``; (exit status, output)."""
    out = StringIO()
    try:
        call_command("waivers", "gate", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def gate_json():
    status, output = gate("--format", "json")
    return status, json.loads(output)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(TODAY, tick=False):
        yield


def test_it_passes_with_every_secret_in_order_and_no_waiver(production_secrets):
    status, output = gate()

    assert status == 0, output
    assert "PASSED" in output
    assert "BLOCKING" not in output


def test_it_blocks_on_an_open_high_risk_waiver_even_when_approved(
    production_secrets, approver
):
    waiver = make_waiver(risk="high", approved_by=approver)

    status, report = gate_json()

    assert status == 1
    assert report["blocking"] == [
        {
            "kind": "waiver",
            "id": waiver.reference,
            "problems": ["risk_not_low"],
            "message": f"{waiver.reference} ({waiver.item}): high risk",
        }
    ]


def test_it_passes_with_an_approved_low_risk_waiver_within_its_deadline(
    production_secrets, approver
):
    make_waiver(risk="low", approved_by=approver)

    status, output = gate()

    assert status == 0, output
    assert "1 open waiver(s), all low risk, approved" in output


def test_it_blocks_on_a_low_risk_waiver_awaiting_approval(production_secrets):
    waiver = make_waiver(risk="low")

    status, report = gate_json()

    assert status == 1
    assert [(b["id"], b["problems"]) for b in report["blocking"]] == [
        (waiver.reference, ["not_approved"])
    ]


def test_a_low_risk_waiver_passes_on_its_deadline_day_and_blocks_the_day_after(
    production_secrets, approver
):
    make_waiver(risk="low", deadline=date(2026, 12, 10), approved_by=approver)

    with time_machine.travel("2026-12-10 23:59:59+00:00", tick=False):
        on_the_day, _ = gate()
    with time_machine.travel("2026-12-11 00:00:01+00:00", tick=False):
        after, report = gate_json()

    assert on_the_day == 0
    assert after == 1
    assert report["blocking"][0]["problems"] == ["deadline_passed"]


def test_a_closed_or_rejected_waiver_does_not_count(production_secrets, approver):
    from waivers.models import Waiver, WaiverStatus

    make_waiver(risk="critical", status=WaiverStatus.CLOSED)
    make_waiver(risk="high", status=WaiverStatus.REJECTED)

    status, report = gate_json()

    assert status == 0
    assert report["waivers"] == []
    assert Waiver.objects.count() == 2


def test_it_blocks_on_a_missing_required_secret(production_secrets, settings):
    settings.PAGERDUTY_ROUTING_KEY = ""

    status, report = gate_json()

    assert status == 1
    assert report["blocking"] == [
        {
            "kind": "secret",
            "id": "PAGERDUTY_ROUTING_KEY",
            "problems": ["missing"],
            "message": "PAGERDUTY_ROUTING_KEY is missing",
        }
    ]


def test_a_setting_this_deployment_does_not_define_counts_as_missing(
    production_secrets, settings
):
    del settings.SLACK_WEBHOOK_URL

    status, report = gate_json()

    assert status == 1
    assert [b["id"] for b in report["blocking"]] == ["SLACK_WEBHOOK_URL"]


def test_an_optional_secret_left_unset_is_only_a_note(production_secrets):
    status, report = gate_json()

    assert status == 0
    assert {"kind": "secret", "id": "RECON_TICKET_WEBHOOK_URL"}.items() <= next(
        n for n in report["notes"] if n["id"] == "RECON_TICKET_WEBHOOK_URL"
    ).items()


def test_it_blocks_on_a_test_value_and_says_why_without_showing_it(
    production_secrets, settings
):
    settings.PROVIDERS["acme"]["api_key"] = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"

    status, output = gate()

    assert status == 1
    assert (
        "PROVIDER_ACME_API_KEY looks like a test or placeholder value: "
        "contains the test marker 'sk_test_'" in output
    )
    assert "4eC39HqLyjWDarjtT1zdp7dc" not in output


def test_an_approved_low_risk_waiver_of_a_test_value_secret_lets_it_pass(
    production_secrets, settings, approver
):
    settings.PROVIDERS["acme"]["api_key"] = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    waiver = make_waiver(
        secret="PROVIDER_ACME_API_KEY", risk="low", approved_by=approver
    )

    status, report = gate_json()

    assert status == 0
    note = next(n for n in report["notes"] if n["id"] == "PROVIDER_ACME_API_KEY")
    assert note["problems"] == ["test_value"]
    assert f"waived by {waiver.reference}" in note["message"]


def test_a_waiver_of_a_secret_that_is_not_acceptable_excuses_nothing(
    production_secrets, settings
):
    settings.PROVIDERS["acme"]["api_key"] = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    waiver = make_waiver(secret="PROVIDER_ACME_API_KEY", risk="medium")

    status, report = gate_json()

    assert status == 1
    blocking = {(b["kind"], b["id"]): b for b in report["blocking"]}
    assert blocking[("waiver", waiver.reference)]["problems"] == [
        "risk_not_low",
        "not_approved",
    ]
    assert (
        "does not cover it: medium risk, not approved"
        in (blocking[("secret", "PROVIDER_ACME_API_KEY")]["message"])
    )


def _observed_long_ago_then_partly_rotated(settings):
    """Observe every secret on day 0; on day 30 rotate all the 90-day ones
    but DATABASE_URL; return the day DATABASE_URL falls due (day 90)."""
    with time_machine.travel("2026-09-01 09:00:00+00:00", tick=False):
        assert gate()[0] == 0
    with time_machine.travel("2026-10-01 09:00:00+00:00", tick=False):
        settings.REDIS_URL = (
            "redis://:0f1e2d3c4b5a69788796a5b4c3d2e1f0@redis.internal/0"
        )
        settings.PROVIDERS["acme"]["api_key"] = (
            "sk_live_9a8b7c6d5e4f30211203f4e5d6c7b8a9"
        )
        assert gate()[0] == 0
    return "2026-11-30 09:00:00+00:00"


def test_it_blocks_on_a_rotation_overdue_without_a_waiver(production_secrets, settings):
    due = _observed_long_ago_then_partly_rotated(settings)

    with time_machine.travel(due, tick=False):
        status, report = gate_json()

    assert status == 1
    assert report["blocking"] == [
        {
            "kind": "secret",
            "id": "DATABASE_URL",
            "problems": ["rotation_overdue"],
            "message": "DATABASE_URL was due for rotation on 2026-11-30 "
            "(every 90 days)",
        }
    ]


def test_it_does_not_block_the_second_before_the_rotation_is_due(
    production_secrets, settings
):
    _observed_long_ago_then_partly_rotated(settings)

    with time_machine.travel("2026-11-30 08:59:59+00:00", tick=False):
        status, _ = gate()

    assert status == 0


def test_an_approved_low_risk_waiver_covers_an_overdue_rotation(
    production_secrets, settings, approver
):
    due = _observed_long_ago_then_partly_rotated(settings)
    with time_machine.travel(due, tick=False):
        make_waiver(
            secret="DATABASE_URL",
            risk="low",
            deadline=date(2026, 12, 14),
            approved_by=approver,
        )

        status, report = gate_json()

    assert status == 0
    assert [n["problems"] for n in report["notes"] if n["id"] == "DATABASE_URL"] == [
        ["rotation_overdue"]
    ]


def test_a_rotation_recorded_by_the_gate_itself_clears_an_overdue_secret(
    production_secrets, settings
):
    due = _observed_long_ago_then_partly_rotated(settings)
    settings.DATABASE_URL = (
        "postgres://opsadmin:6c5d4e3f2a1b0c9d8e7f6a5b@db.internal/ops"
    )

    with time_machine.travel(due, tick=False):
        status, output = gate()

    assert status == 0, output


def test_the_json_output_keeps_its_documented_shape(production_secrets, approver):
    make_waiver(risk="medium", approved_by=approver)

    status, report = gate_json()

    assert status == 1
    assert set(report) == {
        "schema",
        "checked_at",
        "environment",
        "passed",
        "blocking",
        "notes",
        "waivers",
        "secrets",
    }
    assert report["schema"] == "opsadmin.waivers.gate/1"
    assert report["passed"] is False
    assert report["checked_at"] == "2026-12-01T09:00:00+00:00"
    assert set(report["blocking"][0]) == {"kind", "id", "problems", "message"}
    assert set(report["waivers"][0]) == {
        "id",
        "item",
        "secret",
        "risk",
        "owner",
        "deadline",
        "days_to_deadline",
        "status",
        "approver",
        "approved_at",
        "acceptable",
    }
    assert report["waivers"][0]["days_to_deadline"] == 30
    secret = next(s for s in report["secrets"] if s["name"] == "SECRET_KEY")
    assert set(secret) == {
        "name",
        "title",
        "owner",
        "required",
        "status",
        "problems",
        "rotation_days",
        "value_since",
        "value_since_known",
        "rotation_due",
        "overdue",
        "waiver",
        "waived",
    }
    assert secret["rotation_due"] == "2027-12-01T09:00:00+00:00"


def test_no_secret_value_appears_in_any_output(production_secrets):
    outputs = [gate()[1], gate("--format", "json")[1]]
    out = StringIO()
    call_command("waivers", "secrets", stdout=out)
    outputs.append(out.getvalue())

    for value in production_secrets.values():
        for output in outputs:
            assert value not in output


def test_no_observe_leaves_the_observations_alone(production_secrets):
    from waivers.models import SecretObservation

    gate("--no-observe")

    assert not SecretObservation.objects.exists()


def test_list_shows_the_open_waivers_soonest_first(production_secrets):
    later = make_waiver(deadline=date(2027, 2, 1))
    sooner = make_waiver(deadline=date(2026, 12, 5))
    out = StringIO()

    call_command("waivers", "list", "--format", "json", stdout=out)

    assert [w["id"] for w in json.loads(out.getvalue())] == [
        sooner.reference,
        later.reference,
    ]
    assert json.loads(out.getvalue())[0]["days_to_deadline"] == 4
