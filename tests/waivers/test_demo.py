from datetime import UTC, date, datetime
from io import StringIO
from types import SimpleNamespace

import pytest

from waivers.demo import seed_demo
from waivers.models import SecretObservation, Waiver

pytestmark = pytest.mark.django_db


def test_the_demo_loads_the_example_register_with_deadlines_moved_to_now():
    out = StringIO()

    seed_demo(rng=None, now=datetime(2027, 3, 1, 12, 0, tzinfo=UTC), stdout=out)

    assert Waiver.objects.count() == 8
    # W-002 is due a week after the example's date (2026-12-01).
    assert Waiver.objects.get(reference="W-002").deadline == date(2027, 3, 8)
    assert SecretObservation.objects.exists()
    assert "8 waiver(s) created" in out.getvalue()


def test_running_the_demo_twice_changes_nothing():
    now = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    seed_demo(now=now)

    report = seed_demo(now=now, stdout=None, extra="ignored")

    assert (len(report.created), len(report.updated)) == (0, 0)


def test_the_demo_also_takes_the_seeding_context_object():
    out = StringIO()
    context = SimpleNamespace(seed=7, now=datetime(2027, 3, 1, tzinfo=UTC), stdout=out)

    seed_demo(context)

    assert Waiver.objects.get(reference="W-002").deadline == date(2027, 3, 8)
    assert "8 waiver(s) created" in out.getvalue()


def test_a_row_for_a_provider_the_demo_does_not_configure_is_skipped(settings):
    settings.PROVIDERS = {"acme": {"api_key": "", "webhook_secret": ""}}
    out = StringIO()

    seed_demo(now=datetime(2027, 3, 1, tzinfo=UTC), stdout=out)

    assert Waiver.objects.count() == 7
    assert "skipped line 11: Item `PROVIDER_SANDBOX_WEBHOOK_SECRET` names no" in (
        out.getvalue()
    )
