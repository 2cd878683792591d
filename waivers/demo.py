"""Demo data: the example register, with its deadlines moved to today.

``seed_demo`` is the hook the demo seeding calls, either with one context
object (``seed_demo(context)``, whose ``now`` and ``stdout`` attributes are
read when present) or with keywords (``seed_demo(rng=..., now=...,
stdout=...)``); every argument is optional and others are ignored. It imports
docs/examples/prod_env_waiver_register.md through the same service as
``manage.py waivers import``, after moving each deadline by the time between
the example's date and ``now``, so the register shows deadlines ahead,
close and past. It creates the people the example names (without a usable
password) when they do not exist, and observes the secrets once so the
Secrets page has something to show. Running it again changes nothing
unless ``now`` moved.
"""

from dataclasses import replace
from datetime import date
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from waivers.markdown import register_parse
from waivers.services.importing import register_import
from waivers.services.observations import secrets_observe

EXAMPLE = Path(settings.BASE_DIR) / "docs" / "examples" / "prod_env_waiver_register.md"
# The date the example register was written ("as of" in its text).
EXAMPLE_AS_OF = date(2026, 12, 1)
PEOPLE = {
    "m.keller": "Mara Keller",
    "j.okafor": "John Okafor",
    "l.fischer": "Lena Fischer",
    "a.novak": "Ana Novak",
    "s.berg": "Sven Berg",
}


def _person(username: str, full_name: str):
    first, _, last = full_name.partition(" ")
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={
            "first_name": first,
            "last_name": last,
            "email": f"{username}@example.com",
        },
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def seed_demo(context=None, *, rng=None, now=None, stdout=None, **_ignored):
    """Load the example register and observe the secrets; returns the import report."""
    now = now or getattr(context, "now", None) or timezone.now()
    stdout = stdout or getattr(context, "stdout", None)
    for username, full_name in PEOPLE.items():
        _person(username, full_name)

    register = register_parse(EXAMPLE.read_text())
    # A row naming a provider this demo does not configure (the example uses
    # "sandbox") is left out and said so; the others still load.
    for error in register.errors:
        if stdout is not None:
            stdout.write(f"waivers: skipped {error}\n")
    register.errors = []
    shift = timezone.localdate(now) - EXAMPLE_AS_OF
    register.rows = [
        replace(row, fields={**row.fields, "deadline": row.fields["deadline"] + shift})
        for row in register.rows
    ]
    report = register_import(register=register, apply=True, source="demo")
    if report.errors:
        # The example and the code disagree (a provider code, a column): a bug.
        raise ValueError("; ".join(str(error) for error in report.errors))
    secrets_observe(source="demo", now=now)
    if stdout is not None:
        stdout.write(
            f"waivers: {len(report.created)} waiver(s) created, "
            f"{len(report.updated)} updated from {EXAMPLE.name}; "
            "approve the ones awaiting approval in the admin.\n"
        )
    return report
