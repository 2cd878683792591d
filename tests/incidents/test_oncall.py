"""Who is on call: handoffs, daylight saving, time zones and overrides."""

import datetime as dt

import pytest

from incidents.models import RotationOverride
from incidents.selectors import (
    oncall_person,
    oncall_resolve,
    rotation_findings,
    shifts_upcoming,
)
from tests.factories import make_oncall_person, make_rotation, make_user

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def _at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def abc():
    return [make_user(name) for name in ("ada", "bo", "cy")]


def _who(rotation, at):
    user = oncall_resolve(rotation, at).user
    return user.username if user else None


def test_it_hands_over_at_the_local_handoff_time(abc):
    # Monday 09:00 in Berlin is 08:00 UTC in winter.
    rotation = make_rotation(members=abc, starts_on=dt.date(2026, 3, 2))

    assert _who(rotation, _at(2026, 3, 9, 7, 59, 59)) == "ada"
    assert _who(rotation, _at(2026, 3, 9, 8, 0)) == "bo"
    assert _who(rotation, _at(2026, 3, 16, 8, 0)) == "cy"
    assert _who(rotation, _at(2026, 3, 23, 8, 0)) == "ada"


def test_nobody_is_on_call_before_the_first_shift(abc):
    rotation = make_rotation(members=abc, starts_on=dt.date(2026, 3, 2))

    assert _who(rotation, _at(2026, 3, 2, 7, 59)) is None
    assert _who(rotation, _at(2026, 3, 2, 8, 0)) == "ada"


def test_the_first_shift_starts_on_the_first_handoff_weekday(abc):
    # Starts on a Wednesday, hands over on Mondays: ada from Monday 9 March.
    rotation = make_rotation(members=abc, starts_on=dt.date(2026, 3, 4))

    assert _who(rotation, _at(2026, 3, 8, 12, 0)) is None
    assert _who(rotation, _at(2026, 3, 9, 8, 0)) == "ada"


def test_the_handoff_keeps_its_wall_clock_time_when_summer_time_starts(abc):
    # Berlin moves to CEST on Sunday 29 March 2026: Monday 09:00 is 07:00 UTC.
    rotation = make_rotation(members=abc, starts_on=dt.date(2026, 3, 2))

    assert _who(rotation, _at(2026, 3, 30, 6, 59, 59)) == "ada"
    assert _who(rotation, _at(2026, 3, 30, 7, 0)) == "bo"


def test_the_handoff_keeps_its_wall_clock_time_when_summer_time_ends(abc):
    # Back to CET on Sunday 25 October 2026: Monday 09:00 is 08:00 UTC again.
    rotation = make_rotation(members=abc, starts_on=dt.date(2026, 3, 2))
    before = _who(rotation, _at(2026, 10, 26, 7, 59, 59))

    assert _who(rotation, _at(2026, 10, 26, 7, 0)) == before
    assert _who(rotation, _at(2026, 10, 26, 8, 0)) != before


def test_a_daily_rotation_hands_over_across_the_night_the_clocks_change(abc):
    rotation = make_rotation(members=abc, shift_days=1, starts_on=dt.date(2026, 3, 23))
    # Monday 23 March 09:00 CET is the first handoff (ada); Sunday 29 March
    # (summer time from 02:00) is the 7th shift: ada again, from 07:00 UTC.

    assert _who(rotation, _at(2026, 3, 29, 6, 59)) == "cy"
    assert _who(rotation, _at(2026, 3, 29, 7, 0)) == "ada"


def test_the_same_instant_resolves_by_each_rotations_own_zone(abc):
    # The US is on summer time from 8 March, Europe only from 29 March.
    berlin = make_rotation(members=abc, time_zone="Europe/Berlin")
    new_york = make_rotation(members=abc, time_zone="America/New_York")
    # Monday 16 March, 12:00 UTC: 13:00 in Berlin, 08:00 in New York.
    noon = _at(2026, 3, 16, 12, 0)

    assert _who(berlin, noon) == "cy"
    assert _who(new_york, noon) == "bo"
    assert _who(new_york, _at(2026, 3, 16, 13, 0)) == "cy"


def test_moving_a_rotation_to_another_zone_moves_its_handoffs(abc):
    rotation = make_rotation(members=abc, time_zone="Europe/Berlin")
    between = _at(2026, 3, 16, 10, 0)  # after Berlin's 09:00, before New York's
    assert _who(rotation, between) == "cy"

    rotation.time_zone = "America/New_York"
    rotation.save()

    assert _who(rotation, between) == "bo"
    assert oncall_resolve(rotation, between).ends_at == _at(2026, 3, 16, 13, 0)


def test_a_shift_knows_when_it_starts_and_ends(abc):
    rotation = make_rotation(members=abc)

    shift = oncall_resolve(rotation, _at(2026, 3, 31, 12, 0))

    assert shift.starts_at == _at(2026, 3, 30, 7, 0)
    assert shift.ends_at == _at(2026, 4, 6, 7, 0)


def test_an_override_covers_part_of_a_shift(abc):
    rotation = make_rotation(members=abc)
    stand_in = make_user("dee")
    RotationOverride.objects.create(
        rotation=rotation,
        user=stand_in,
        starts_at=_at(2026, 3, 10, 18, 0),
        ends_at=_at(2026, 3, 11, 6, 0),
        reason="bo at a wedding",
    )

    assert _who(rotation, _at(2026, 3, 10, 17, 59)) == "bo"
    assert _who(rotation, _at(2026, 3, 10, 18, 0)) == "dee"
    assert oncall_resolve(rotation, _at(2026, 3, 10, 20, 0)).override is not None
    assert _who(rotation, _at(2026, 3, 11, 6, 0)) == "bo"


def test_the_newest_of_overlapping_overrides_wins(abc):
    rotation = make_rotation(members=abc)
    window = {"starts_at": _at(2026, 3, 10, 0, 0), "ends_at": _at(2026, 3, 12, 0, 0)}
    RotationOverride.objects.create(
        rotation=rotation, user=make_user("first"), reason="swap", **window
    )
    RotationOverride.objects.create(
        rotation=rotation, user=make_user("second"), reason="swap again", **window
    )

    assert _who(rotation, _at(2026, 3, 11, 0, 0)) == "second"


def test_upcoming_shifts_follow_the_members_in_order(abc):
    rotation = make_rotation(members=abc)

    shifts = shifts_upcoming(rotation, start=_at(2026, 3, 3, 0, 0), count=4)

    assert [s.user.username for s in shifts] == ["ada", "bo", "cy", "ada"]
    assert shifts[1].starts_at == shifts[0].ends_at == _at(2026, 3, 9, 8, 0)


def test_the_on_call_approver_is_whoever_the_approver_rotation_has_now(abc):
    make_rotation(name="Nights", members=abc[:1], role="Operator")
    make_rotation(name="Approvers 2", members=abc[1:], role="Approver")

    assert oncall_person(role="Approver", at=_at(2026, 3, 3, 0, 0)).username == "bo"
    assert oncall_person(role="Approver", at=_at(2026, 3, 10, 0, 0)).username == "cy"
    assert oncall_person(role="Security admin", at=_at(2026, 3, 3, 0, 0)) is None


def test_an_empty_rotation_and_a_person_without_contact_are_findings():
    empty = make_rotation(name="Empty")
    silent = make_oncall_person("silent", email="")
    reachable = make_oncall_person("loud", email="loud@example.com")
    staffed = make_rotation(name="Staffed", members=[silent, reachable])

    assert rotation_findings(empty, _at(2026, 3, 3, 0, 0)) == [
        "rotation Empty has no members"
    ]
    assert rotation_findings(staffed, _at(2026, 3, 3, 0, 0)) == [
        "silent has no contact (no PagerDuty key, Slack or e-mail)"
    ]
