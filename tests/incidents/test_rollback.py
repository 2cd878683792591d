"""Rollback and kill-switch orders: authority by severity, fresh second factor."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents.models import RollbackAuthority, Severity
from incidents.services.incidents import IncidentError, incident_declare, incident_order
from security.models import AuditEntry
from security.roles import INCIDENT_COMMANDER, OPERATOR, VIEWER
from tests.conftest import log_in_verified
from tests.factories import make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ORDER = {
    "order": "rollback",
    "what": "release 2026.03.2 of the payout worker",
    "reason": "payouts posted twice since the deploy",
}


def _incident(level):
    return incident_declare(title="Postings doubled", level=level)


def _order(client, incident, **fields):
    url = reverse("admin:incidents_incident_order", args=[incident.pk])
    return client.post(url, {**ORDER, **fields})


def _orders(incident):
    return incident.timeline.filter(kind="order")


def test_an_operator_orders_a_rollback_at_sev1_under_that_authority(client, roles):
    operator = make_staff(roles=[OPERATOR])
    incident = _incident(1)
    log_in_verified(client, operator)

    response = _order(client, incident)

    assert response.status_code == 302
    (entry,) = _orders(incident)
    assert entry.actor == operator
    assert entry.details == {
        "order": "rollback",
        "what": ORDER["what"],
        "reason": ORDER["reason"],
        "authority": "Operator",
        "severity": "Sev1",
    }
    audit = AuditEntry.objects.get(action="incident.rollback_ordered")
    assert audit.actor == operator
    assert audit.after == {"what": ORDER["what"], "authority": "Operator"}


def test_the_same_operator_is_refused_a_rollback_at_sev3(client, roles):
    incident = _incident(3)
    log_in_verified(client, make_staff(roles=[OPERATOR]))

    response = _order(client, incident)

    assert response.status_code == 200
    assert b"None of your roles may order a rollback of a release at Sev3" in (
        response.content
    )
    assert not _orders(incident).exists()
    assert not AuditEntry.objects.filter(action__startswith="incident.").exists()


def test_but_may_switch_a_flag_off_at_sev2(client, roles):
    incident = _incident(2)
    log_in_verified(client, make_staff(roles=[OPERATOR]))

    _order(client, incident, order="kill_switch", what="flag payouts.batching")

    assert _orders(incident).get().details["authority"] == "Operator"


def test_a_viewer_is_refused_at_every_severity(client, roles):
    log_in_verified(client, make_staff(roles=[VIEWER]))

    for level in (1, 2, 3, 4):
        incident = _incident(level)
        _order(client, incident)
        assert not _orders(incident).exists()


def test_the_order_needs_a_fresh_second_factor(client, roles):
    incident = _incident(1)
    log_in_verified(client, make_staff(roles=[INCIDENT_COMMANDER]))

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=10)):
        response = _order(client, incident)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security:step_up"))
    assert not _orders(incident).exists()


def test_a_superuser_is_no_authority(roles):
    incident = _incident(1)

    with pytest.raises(IncidentError, match="none of your roles"):
        incident_order(
            incident_id=incident.pk,
            actor=make_staff(superuser=True),
            **ORDER,
        )


def test_the_authority_follows_the_matrix_data(roles):
    incident = _incident(3)
    RollbackAuthority.objects.create(
        severity=Severity.objects.get(level=3), order="rollback", role=OPERATOR
    )

    entry = incident_order(
        incident_id=incident.pk, actor=make_staff(roles=[OPERATOR]), **ORDER
    )

    assert entry.details["authority"] == "Operator"


def test_no_order_on_a_resolved_incident(roles):
    from incidents.services.incidents import incident_set_status

    incident = _incident(1)
    incident_set_status(incident_id=incident.pk, status="resolved", actor=None)

    with pytest.raises(IncidentError, match="resolved"):
        incident_order(
            incident_id=incident.pk,
            actor=make_staff(roles=[INCIDENT_COMMANDER]),
            **ORDER,
        )
