import datetime as dt
import io

import pytest

from incidents.demo import seed_demo
from incidents.models import Exercise, Incident, Rotation
from incidents.selectors import oncall_person

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)


class Context:
    now = NOW
    stdout = io.StringIO()


def test_it_staffs_the_rotations_and_leaves_a_record_of_each_kind():
    seed_demo(Context())

    assert all(rotation.members.exists() for rotation in Rotation.objects.all())
    assert oncall_person(role="Approver", at=NOW) is not None
    incident = Incident.objects.get()
    assert incident.status == "resolved"
    assert incident.review.completed_at is not None
    # No stuck case to link in an empty platform: seven entries, no link.
    assert incident.timeline.count() == 7
    exercise = Exercise.objects.get()
    assert exercise.status == "completed"
    assert exercise.deliveries.count() == exercise.scenario.injects.count()
    assert exercise.action_items.count() == 2


def test_running_it_twice_adds_nothing():
    seed_demo(now=NOW)
    seed_demo(now=NOW)

    assert Incident.objects.count() == Exercise.objects.count() == 1
    assert Rotation.objects.get(name="Primary on-call").members.count() == 3


def test_it_is_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(RuntimeError, match="refused in production"):
        seed_demo(now=NOW)
