"""docs/incident-playbook.md is what the seeded data says."""

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Severity
from incidents.playbook import PLAYBOOK_PATH, playbook_markdown

pytestmark = pytest.mark.django_db


def test_the_committed_playbook_matches_the_seeded_data():
    assert PLAYBOOK_PATH.read_text() == playbook_markdown()


def test_the_check_fails_once_the_data_moves_on(capsys):
    call_command("incident_playbook", "--check")
    sev2 = Severity.objects.get(level=2)
    sev2.response_minutes = 20
    sev2.save()

    with pytest.raises(CommandError, match="does not match the data"):
        call_command("incident_playbook", "--check")


def test_it_shows_the_matrix_and_the_authority_as_data():
    text = playbook_markdown()

    assert (
        "1. Whoever is on call in *Primary on-call*, by PagerDuty, Slack; wait 5 min."
        in text
    )
    assert "| Sev2 | Approver, Incident commander | Operator, Approver, " in text


def test_printing_is_the_default_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "incidents.management.commands.incident_playbook.PLAYBOOK_PATH",
        tmp_path / "playbook.md",
    )

    call_command("incident_playbook")

    assert capsys.readouterr().out.startswith("# Incident playbook")
    assert not (tmp_path / "playbook.md").exists()
