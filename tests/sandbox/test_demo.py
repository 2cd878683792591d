"""The sandbox's side of the seeded payouts and deposits."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from finance.models import Deposit, Payout
from sandbox.demo import seed_demo
from sandbox.models import Behaviour, SandboxDeposit, SandboxPayout

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    call_command("seed_demo", "--size", "tiny", "--no-hooks", stdout=None)


def test_every_payout_that_reached_the_provider_is_known_there(seeded):
    seed_demo()

    sent = Payout.objects.filter(provider_reference__isnull=False)
    known = dict(SandboxPayout.objects.values_list("provider_reference", "status"))
    assert sent.exists()
    assert known == dict(sent.values_list("provider_reference", "state"))


def test_processing_payouts_and_pending_deposits_never_settle_by_themselves(seeded):
    seed_demo()

    unsettled = SandboxPayout.objects.filter(status="processing")
    pending = SandboxDeposit.objects.filter(status="pending")
    assert unsettled.exists()
    assert set(unsettled.values_list("behaviour", flat=True)) == {
        Behaviour.NEVER_SETTLE
    }
    assert set(pending.values_list("behaviour", flat=True)) <= {Behaviour.NEVER_SETTLE}


def test_deposits_keep_their_status(seeded):
    seed_demo()

    sent = Deposit.objects.filter(provider_reference__isnull=False)
    known = dict(SandboxDeposit.objects.values_list("provider_reference", "status"))
    assert known == dict(sent.values_list("provider_reference", "state"))


def test_running_it_twice_adds_nothing(seeded):
    first = seed_demo()

    second = seed_demo()

    assert first["payouts"] == SandboxPayout.objects.count() > 0
    assert second == {"payouts": 0, "deposits": 0}


def test_a_seeded_processing_payout_answers_a_poll(seeded, client, settings):
    seed_demo()
    payout = SandboxPayout.objects.filter(status="processing").first()

    response = client.get(
        reverse("sandbox:payout", args=[payout.provider_reference]),
        HTTP_AUTHORIZATION=f"Bearer {settings.PROVIDERS['sandbox']['api_key']}",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "processing"


def test_it_is_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(RuntimeError, match="production"):
        seed_demo()
