import pytest

from incidents.models import Rotation, RotationMember
from security.services import roles_sync
from tests.factories import make_oncall_person
from tests.jobs.conftest import register  # noqa: F401

# The seeded Sev1 policy, in order (incidents/migrations/0002_playbook_seed.py).
SEV1_ROTATIONS = [
    "Primary on-call",
    "Secondary on-call",
    "Incident commanders",
    "Engineering management",
]


@pytest.fixture
def roles(db):
    roles_sync(apply=True)


@pytest.fixture
def person(receiver):
    """An on-call person reachable on every channel at the receiver:
    PagerDuty with the routing key ``PD-<name>``, Slack at ``/slack/<name>``."""

    def make(name: str, **contact):
        values = {
            "pagerduty": f"PD-{name}",
            "slack_webhook": f"{receiver.url}/slack/{name}",
            "email": f"{name}@example.com",
        }
        values.update(contact)
        return make_oncall_person(name, **values)

    return make


@pytest.fixture
def staffed(person):
    """One reachable person in each seeded rotation; returns them by rotation."""
    people = {}
    for number, name in enumerate([*SEV1_ROTATIONS, "Approvers"], start=1):
        people[name] = person(f"p{number}")
        RotationMember.objects.create(
            rotation=Rotation.objects.get(name=name), user=people[name], position=1
        )
    return people


def paged(receiver) -> list[tuple[str, str]]:
    """(channel, recipient) of every trigger the receiver got, in order."""
    out = []
    for request in receiver.requests:
        body = request["body"]
        if request["path"] == "/pagerduty" and body["event_action"] == "trigger":
            out.append(("pagerduty", body["routing_key"]))
        elif request["path"].startswith("/slack/"):
            out.append(("slack", request["path"].removeprefix("/slack/")))
    return out
