"""The secrets inventory as deployment checks (``manage.py check --deploy``).

With OPSADMIN_ENV=production, each required secret that is missing and each
secret on a test or placeholder value is an error unless an approved,
low-risk waiver within its deadline covers it; a rotation overdue without
such a waiver is a warning. Outside production nothing is reported: the
development defaults (sandbox test keys) are expected there, and
``manage.py waivers gate`` judges any configuration on demand.

These checks read the database (waivers, rotation dates), which Django's own
checks avoid without ``--database``: there is no other way to know whether a
waiver covers a finding. They never write: the gate and the scheduled task
record observations. When the database cannot be read, every finding stands
as if unwaived and waivers.W001 says so, rather than passing a check that
could not be made; a build step without a database that needs the check to
pass silences waivers.W001 explicitly (it then shows as silenced).
"""

from datetime import datetime

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError
from django.utils import timezone

from waivers.inspection import MISSING, TEST_VALUE, secrets_inspect
from waivers.inventory import SecretSpec
from waivers.rotation import overlap_problems
from waivers.selectors import secret_states

_HINT = (
    "Set it (docs/runbook.md, 'Secret rotation'), or record a low-risk waiver "
    "and have it approved in the admin."
)


@register(Tags.security, deploy=True)
def check_production_secrets(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return []
    now = timezone.now()
    inspections = secrets_inspect()
    messages: list[CheckMessage] = []
    rows: list[tuple[SecretSpec, str, tuple[str, ...], bool, datetime | None]]
    try:
        states = secret_states(now=now, inspections=inspections)
    except DatabaseError as exc:
        messages.append(
            Warning(
                "The waiver register and rotation dates could not be read "
                f"({exc.__class__.__name__}): secrets are judged without "
                "waivers and rotation ages are not checked.",
                id="waivers.W001",
            )
        )
        rows = [(i.spec, i.status, i.problems, False, None) for i in inspections]
    else:
        rows = [
            (
                s.spec,
                s.status,
                s.problems,
                s.waived,
                s.rotation_due if s.overdue else None,
            )
            for s in states
        ]

    for spec, status, problems, waived, overdue_since in rows:
        if waived:
            continue
        if status == MISSING and spec.required:
            messages.append(
                Error(
                    f"{spec.name} {spec.missing_text} ({spec.title}).",
                    hint=_HINT,
                    id="waivers.E001",
                )
            )
        elif status == TEST_VALUE:
            messages.append(
                Error(
                    f"{spec.name} looks like a test or placeholder value: "
                    + "; ".join(problems)
                    + ".",
                    hint=_HINT,
                    id="waivers.E002",
                )
            )
        if overdue_since is not None:
            messages.append(
                Warning(
                    f"{spec.name} was due for rotation on {overdue_since:%Y-%m-%d}.",
                    hint=f"{spec.how_to_rotate} Then run `manage.py waivers gate`.",
                    id="waivers.W002",
                )
            )

    for provider in sorted(settings.PROVIDERS):
        for problem in overlap_problems(provider, now=now):
            messages.append(
                Warning(f"Provider {provider}: {problem}.", id="waivers.W003")
            )
    return messages
