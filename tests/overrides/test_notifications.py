"""Approvers hear of a new request, over real HTTP to a loopback receiver."""

import pytest
from django.db import transaction

from incidents.models import Rotation
from security.roles import APPROVER
from tests.factories import (
    make_oncall_person,
    make_override,
    make_rotation,
    make_stuck_payout,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def oncall_approver(receiver):
    person = make_oncall_person(slack_webhook=receiver.url + "/oncall-approver")
    Rotation.objects.filter(role=APPROVER).delete()
    make_rotation("approvers", members=[person], role=APPROVER)
    return person


def test_the_oncall_approver_hears_of_the_request(
    receiver,
    committed,
    oncall_approver,
    doer,
):
    payout = make_stuck_payout(amount=5_000, fee=150)

    with committed():
        override = make_override(target=payout, doer=doer, ticket_reference="OPS-77")

    (body,) = receiver.bodies("/oncall-approver")
    assert f"Override request {override.pk} needs an Approver" in body["text"]
    assert f"not {doer}" in body["text"]
    assert "51.50 EUR" in body["text"]
    assert "OPS-77" in body["text"]
    assert f"/admin/overrides/overriderequest/{override.pk}/change/" in body["text"]
    assert receiver.bodies("/slack") == []


def test_with_nobody_on_call_the_team_channel_hears(
    receiver,
    committed,
    doer,
):
    Rotation.objects.filter(role=APPROVER).delete()

    with committed():
        override = make_override(target=make_stuck_payout(), doer=doer)

    (body,) = receiver.bodies("/slack")
    assert f"Override request {override.pk}" in body["text"]


def test_a_submission_that_rolls_back_tells_nobody(
    receiver,
    committed,
    oncall_approver,
    doer,
):
    payout = make_stuck_payout()

    with committed(), transaction.atomic():
        make_override(target=payout, doer=doer)
        transaction.set_rollback(True)

    assert receiver.requests == []
