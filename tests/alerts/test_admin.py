"""The alerts admin: what nobody received is findable and can be sent again."""

import pytest
from django.urls import reverse

from alerts.models import Delivery
from alerts.services import alert_trigger
from tests.conftest import log_in_verified
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def operator(client):
    log_in_verified(client, make_user(is_staff=True, is_superuser=True))


@pytest.fixture
def undelivered(receiver, committed, settings):
    """A Slack alert refused with a 400 when there is no e-mail fallback."""
    settings.PAGERDUTY_ROUTING_KEY = ""
    settings.ALERT_EMAIL_TO = []
    receiver.answer(400)
    with committed():
        alert_trigger(key="job.nightly.failed", summary="Job nightly failed")
    return Delivery.objects.get()


def test_it_lists_undelivered_alerts(client, operator, undelivered):
    url = reverse("admin:alerts_delivery_changelist") + "?undelivered=yes"

    shown = client.get(url).context["cl"].result_list

    assert list(shown) == [undelivered]


def test_it_sends_a_failed_delivery_again(
    client, operator, undelivered, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:alerts_delivery_changelist"),
            {"action": "resend", "_selected_action": [undelivered.pk]},
            follow=True,
        )

    assert "Queued 1 new deliveries; skipped 0" in response.content.decode()
    assert list(Delivery.objects.values_list("status", flat=True)) == [
        "delivered",
        "failed",
    ]
    assert len(receiver.bodies("/slack")) == 2
