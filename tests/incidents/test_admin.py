"""The incidents admin: every page renders, and each form calls its service."""

import datetime as dt

import pytest
import time_machine
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from incidents.demo import seed_demo
from incidents.models import (
    EscalationStep,
    Incident,
    OnCallProfile,
    Page,
    Severity,
)
from incidents.services.incidents import incident_declare
from security.models import AuditEntry
from security.roles import APPROVER, INCIDENT_COMMANDER, OPERATOR, VIEWER
from tests.conftest import log_in_verified
from tests.factories import make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _incidents_models():
    return [
        model for model in admin.site._registry if model._meta.app_label == "incidents"
    ]


@pytest.mark.parametrize("role", [INCIDENT_COMMANDER, VIEWER])
def test_every_incidents_page_renders_with_demo_data(client, roles, role):
    seed_demo(now=timezone.now())
    incident_declare(title="Open one", level=2)
    log_in_verified(client, make_staff(roles=[role]))

    for model in _incidents_models():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert client.get(reverse(f"{info}_changelist")).status_code == 200, model
        record = model._default_manager.order_by("pk").first()
        if record is not None:
            page = client.get(reverse(f"{info}_change", args=[record.pk]))
            assert page.status_code == 200, model


def test_the_incident_page_offers_its_forms(client, roles):
    incident = incident_declare(title="Open one", level=2)
    log_in_verified(client, make_staff(roles=[INCIDENT_COMMANDER]))

    page = client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))

    for name in ("post", "severity", "acknowledge", "order", "link", "review"):
        url = reverse(f"admin:incidents_incident_{name}", args=[incident.pk])
        assert url.encode() in page.content
        assert client.get(url).status_code == 200, name


def test_an_operator_declares_an_incident_from_the_admin(client, roles):
    operator = make_staff(roles=[OPERATOR])
    log_in_verified(client, operator)

    response = client.post(
        reverse("admin:incidents_incident_add"),
        {"title": "Webhooks rejected", "severity": Severity.objects.get(level=2).pk},
    )

    incident = Incident.objects.get()
    assert response["Location"] == reverse(
        "admin:incidents_incident_change", args=[incident.pk]
    )
    assert (incident.declared_by, incident.commander) == (operator, operator)
    assert incident.pages.get().status == Page.Status.ACTIVE


def test_an_operator_posts_an_update_that_moves_the_status(client, roles):
    incident = incident_declare(title="Webhooks rejected", level=2)
    log_in_verified(client, make_staff(roles=[OPERATOR]))

    client.post(
        reverse("admin:incidents_incident_post", args=[incident.pk]),
        {"kind": "action", "text": "Rolled the secret back.", "status": "mitigated"},
    )

    incident.refresh_from_db()
    assert incident.status == "mitigated"
    assert (
        incident.timeline.filter(kind="action").get().text == "Rolled the secret back."
    )


def test_an_approver_acknowledges_with_the_button(client, roles):
    incident = incident_declare(title="Webhooks rejected", level=2)
    approver = make_staff(roles=[APPROVER])
    log_in_verified(client, approver)

    client.post(reverse("admin:incidents_incident_acknowledge", args=[incident.pk]))

    page = incident.pages.get()
    assert (page.status, page.acknowledged_by, page.acknowledged_via) == (
        "acknowledged",
        approver,
        "admin",
    )


def test_a_viewer_may_not_acknowledge_or_change_anything(client, roles):
    incident = incident_declare(title="Webhooks rejected", level=2)
    log_in_verified(client, make_staff(roles=[VIEWER]))

    for name in ("acknowledge", "post", "severity", "link"):
        url = reverse(f"admin:incidents_incident_{name}", args=[incident.pk])
        assert client.post(url, {"text": "x", "kind": "update"}).status_code == 403
    assert incident.pages.get().status == "active"
    assert incident.timeline.count() == 2


def test_changing_severity_needs_a_reason_and_reevaluates_paging(client, roles):
    incident = incident_declare(title="Webhooks rejected", level=2)
    log_in_verified(client, make_staff(roles=[INCIDENT_COMMANDER]))
    url = reverse("admin:incidents_incident_severity", args=[incident.pk])
    sev1 = Severity.objects.get(level=1)

    refused = client.post(url, {"severity": sev1.pk, "reason": ""})
    client.post(url, {"severity": sev1.pk, "reason": "balances wrong"})

    assert refused.status_code == 200
    incident.refresh_from_db()
    assert incident.severity == sev1
    assert list(incident.pages.order_by("pk").values_list("status", flat=True)) == [
        "superseded",
        "active",
    ]


def test_a_record_is_linked_from_the_admin(client, roles):
    incident = incident_declare(title="Payouts stuck", level=2)
    log_in_verified(client, make_staff(roles=[OPERATOR]))

    client.post(
        reverse("admin:incidents_incident_link", args=[incident.pk]),
        {"target_type": "stuck.stuckcase", "target_id": "12", "label": "payout 77"},
    )

    assert incident.links.get().target_id == "12"


def _severity_form(severity) -> dict:
    data = {
        "level": severity.level,
        "name": severity.name,
        "title": severity.title,
        "meaning": severity.meaning,
        "examples": severity.examples,
        "response_minutes": severity.response_minutes,
        "update_minutes": severity.update_minutes,
        "who_must_be_told": severity.who_must_be_told,
        "inform_email": "",
        "pages_at_night": "on",
        "escalation_repeats": severity.escalation_repeats,
        "rollback_authorities-TOTAL_FORMS": 0,
        "rollback_authorities-INITIAL_FORMS": 0,
    }
    steps = list(severity.escalation_steps.order_by("position"))
    data["escalation_steps-TOTAL_FORMS"] = len(steps)
    data["escalation_steps-INITIAL_FORMS"] = len(steps)
    for n, step in enumerate(steps):
        prefix = f"escalation_steps-{n}-"
        data[prefix + "id"] = step.pk
        data[prefix + "severity"] = severity.pk
        data[prefix + "position"] = step.position
        data[prefix + "rotation"] = step.rotation_id
        data[prefix + "via_pagerduty"] = "on"
        data[prefix + "wait_minutes"] = step.wait_minutes
    return data


def test_editing_the_matrix_needs_a_fresh_code_and_is_audited(client, roles):
    sev1 = Severity.objects.get(level=1)
    log_in_verified(client, make_staff(roles=[INCIDENT_COMMANDER]))
    url = reverse("admin:incidents_severity_change", args=[sev1.pk])
    data = _severity_form(sev1)
    data["escalation_steps-0-wait_minutes"] = 3

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=10)):
        stale = client.post(url, data)
    assert stale["Location"].startswith(reverse("security:step_up"))
    assert EscalationStep.objects.get(severity=sev1, position=1).wait_minutes == 5

    fresh = client.post(url, data)

    assert fresh.status_code == 302
    assert EscalationStep.objects.get(severity=sev1, position=1).wait_minutes == 3
    entry = AuditEntry.objects.get(action="incident.matrix_changed")
    assert entry.before["steps"][0] == [
        1,
        "on call in Primary on-call",
        ["pagerduty", "slack"],
        5,
    ]
    assert entry.after["steps"][0] == [
        1,
        "on call in Primary on-call",
        ["pagerduty"],
        3,
    ]


def test_profile_secrets_are_never_shown_and_kept_when_left_empty(client, roles):
    commander = make_staff(roles=[INCIDENT_COMMANDER])
    log_in_verified(client, commander)
    profile = OnCallProfile.objects.create(
        user=make_staff(), pagerduty_routing_key="R0UTINGSECRET", email="a@example.com"
    )
    url = reverse("admin:incidents_oncallprofile_change", args=[profile.pk])

    page = client.get(url)
    client.post(
        url,
        {
            "user": profile.user_id,
            "pagerduty_routing_key": "",
            "email": "b@example.com",
        },
    )

    assert b"R0UTINGSECRET" not in page.content
    profile.refresh_from_db()
    assert profile.pagerduty_routing_key == "R0UTINGSECRET"
    assert profile.email == "b@example.com"
    client.post(url, {"user": profile.user_id, "pagerduty_routing_key": "none"})
    profile.refresh_from_db()
    assert profile.pagerduty_routing_key == ""


def test_the_rotation_page_lists_the_coming_shifts(client, roles, staffed):
    from incidents.models import Rotation

    rotation = Rotation.objects.get(name="Primary on-call")
    log_in_verified(client, make_staff(roles=[VIEWER]))

    page = client.get(reverse("admin:incidents_rotation_change", args=[rotation.pk]))

    assert page.content.count(b"<td>p1</td>") == 6
