import re
from pathlib import Path

from django.conf import settings

from waivers.inventory import inventory

RUNBOOK = Path(settings.BASE_DIR) / "docs" / "runbook.md"


def rotation_sections() -> dict[str, str]:
    """The "### `NAME`" sections under "## Secret rotation", by NAME."""
    text = RUNBOOK.read_text()
    part = text.split("\n## Secret rotation\n", 1)[1].split("\n## ", 1)[0]
    pieces = re.split(r"^### `([^`]+)`\n", part, flags=re.MULTILINE)
    return dict(zip(pieces[1::2], pieces[2::2], strict=True))


def test_every_secret_of_the_inventory_has_its_rotation_section():
    specs = inventory(provider_codes=["x"])
    sections = rotation_sections()

    missing = [s.runbook_heading for s in specs if s.runbook_heading not in sections]

    assert missing == []


def test_each_section_states_the_owner_and_interval_the_inventory_declares():
    specs = inventory(provider_codes=["x"])
    sections = rotation_sections()

    wrong = [
        spec.runbook_heading
        for spec in specs
        if f"Owner: {spec.owner}. Rotate every {spec.rotation_days} days."
        not in " ".join(sections[spec.runbook_heading].split())
    ]

    assert wrong == []


def test_the_runbook_has_no_section_for_a_secret_that_is_not_declared():
    declared = {s.runbook_heading for s in inventory(provider_codes=["x"])}

    assert set(rotation_sections()) - declared == set()
