"""Reads of the waivers app: the secrets' state, the gate, the register summary.

``gate_evaluate`` is the Definition of Done of the waiver/secrets closure as
one function; ``manage.py waivers gate`` prints it, and ``GateReport.as_dict``
is its machine-readable form (schema in docs/waivers.md).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from waivers.fingerprints import fingerprint_key
from waivers.inspection import MISSING, TEST_VALUE, Inspection, secrets_inspect
from waivers.inventory import SecretSpec
from waivers.models import Risk, SecretObservation, Waiver
from waivers.rotation import overlap_notes, overlap_problems

GATE_SCHEMA = "opsadmin.waivers.gate/1"


@dataclass(frozen=True)
class SecretState:
    spec: SecretSpec
    status: str  # ok, missing, test_value
    problems: tuple[str, ...]
    # When the value in use now was first seen; None while missing.
    value_since: datetime | None
    # False: the value predates our first observation; its age counts from it.
    value_since_known: bool
    rotation_due: datetime | None
    overdue: bool
    waiver: Waiver | None  # the open waiver for this secret, acceptable first
    waived: bool  # that waiver excuses this secret's findings today

    def findings(self) -> list[tuple[str, str]]:
        """(code, message) of each thing wrong with this secret, waived or not."""
        found = []
        if self.status == MISSING and self.spec.required:
            found.append(("missing", f"{self.spec.name} {self.spec.missing_text}"))
        if self.status == TEST_VALUE:
            found.append(
                (
                    "test_value",
                    f"{self.spec.name} looks like a test or placeholder value: "
                    + "; ".join(self.problems),
                )
            )
        if self.overdue and self.rotation_due:
            found.append(
                (
                    "rotation_overdue",
                    f"{self.spec.name} was due for rotation on "
                    f"{self.rotation_due:%Y-%m-%d} (every "
                    f"{self.spec.rotation_days} days)",
                )
            )
        return found


def _value_since(
    inspection: Inspection, observation: SecretObservation | None, *, now, key
) -> tuple[datetime | None, bool]:
    """Since when the value in use has been there, as far as we can tell."""
    if not inspection.present:
        return None, False
    if observation is None or not observation.fingerprint:
        return now, False  # seen for the first time just now
    if observation.key_id == key.key_id:
        if observation.fingerprint != inspection.fingerprint:
            return now, True  # changed since the last observation
    elif inspection.spec.name == key.source == observation.key_source:
        return now, True  # the key's own source changed, hence the new key
    return observation.value_since or now, observation.value_since_known


def secret_states(
    *, now: datetime | None = None, inspections: list[Inspection] | None = None
) -> list[SecretState]:
    """Each declared secret with its status, rotation date and waiver."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    key = fingerprint_key()
    inspections = secrets_inspect() if inspections is None else inspections
    observations = {o.name: o for o in SecretObservation.objects.all()}
    waivers: dict[str, list[Waiver]] = {}
    for waiver in Waiver.objects.open().exclude(secret="").select_related("owner"):
        waivers.setdefault(waiver.secret, []).append(waiver)

    states = []
    for inspection in inspections:
        spec = inspection.spec
        since, known = _value_since(
            inspection, observations.get(spec.name), now=now, key=key
        )
        due = since + timedelta(days=spec.rotation_days) if since else None
        candidates = sorted(
            waivers.get(spec.name, []),
            key=lambda w: (not w.covers(today), w.deadline),
        )
        waiver = candidates[0] if candidates else None
        states.append(
            SecretState(
                spec=spec,
                status=inspection.status,
                problems=inspection.problems,
                value_since=since,
                value_since_known=known,
                rotation_due=due,
                overdue=bool(due and now >= due),
                waiver=waiver,
                waived=bool(waiver and waiver.covers(today)),
            )
        )
    return states


@dataclass(frozen=True)
class GateItem:
    kind: str  # waiver, secret, webhook
    id: str  # the waiver ID, the secret name, the provider code
    problems: tuple[str, ...]  # codes, stable for pipelines
    message: str

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "problems": list(self.problems),
            "message": self.message,
        }


@dataclass
class GateReport:
    checked_at: datetime
    blocking: list[GateItem] = field(default_factory=list)
    notes: list[GateItem] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    secrets: list[SecretState] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def as_dict(self) -> dict:
        today = timezone.localdate(self.checked_at)
        return {
            "schema": GATE_SCHEMA,
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "environment": settings.ENVIRONMENT,
            "passed": self.passed,
            "blocking": [item.as_dict() for item in self.blocking],
            "notes": [item.as_dict() for item in self.notes],
            "waivers": [waiver_as_dict(w, today) for w in self.waivers],
            "secrets": [_secret_dict(s) for s in self.secrets],
        }


def gate_evaluate(*, now: datetime | None = None) -> GateReport:
    """Whether production may be called done, and every item that says otherwise.

    Passes only when every open waiver is low risk, approved and not past
    its deadline, and no secret is missing (when required), on a test value
    or overdue for rotation unless such a waiver covers it.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    report = GateReport(checked_at=now)
    report.waivers = list(Waiver.objects.open().select_related("owner", "approved_by"))

    for open_waiver in report.waivers:
        reasons = open_waiver.blockers(today)
        if reasons:
            report.blocking.append(
                GateItem(
                    "waiver",
                    open_waiver.reference,
                    tuple(code for code, _ in reasons),
                    f"{open_waiver.reference} ({open_waiver.item}): "
                    + ", ".join(reason for _, reason in reasons),
                )
            )

    report.secrets = secret_states(now=now)
    for state in report.secrets:
        findings = state.findings()
        name, waiver = state.spec.name, state.waiver
        if findings and waiver and state.waived:
            report.notes.append(
                GateItem(
                    "secret",
                    name,
                    tuple(code for code, _ in findings),
                    f"{'; '.join(m for _, m in findings)}; waived by "
                    f"{waiver.reference} until {waiver.deadline}",
                )
            )
        elif findings:
            suffix = (
                f" (waiver {waiver.reference} does not cover it: "
                + ", ".join(reason for _, reason in waiver.blockers(today))
                + ")"
                if waiver
                else ""
            )
            for code, message in findings:
                report.blocking.append(
                    GateItem("secret", name, (code,), message + suffix)
                )
        elif waiver:
            report.notes.append(
                GateItem(
                    "secret",
                    name,
                    ("waiver_without_finding",),
                    f"{name} is fine now: close waiver {waiver.reference}",
                )
            )
        if state.status == MISSING and not state.spec.required:
            report.notes.append(
                GateItem("secret", name, ("not_configured",), f"{name} is not set")
            )

    for provider in sorted(getattr(settings, "PROVIDERS", {}) or {}):
        for message in overlap_problems(provider, now=now):
            report.blocking.append(
                GateItem("webhook", provider, ("overlap_too_long",), message)
            )
        for message in overlap_notes(provider, now=now):
            report.notes.append(GateItem("webhook", provider, ("overlap",), message))
    return report


def waiver_as_dict(waiver: Waiver, today) -> dict:
    return {
        "id": waiver.reference,
        "item": waiver.item,
        "secret": waiver.secret or None,
        "risk": waiver.risk,
        "owner": waiver.owner.get_username(),
        "deadline": waiver.deadline.isoformat(),
        "days_to_deadline": waiver.days_to_deadline(today),
        "status": waiver.status,
        "approver": waiver.approved_by.get_username() if waiver.approved_by else None,
        "approved_at": waiver.approved_at.isoformat(timespec="seconds")
        if waiver.approved_at
        else None,
        "acceptable": not waiver.blockers(today),
    }


def _secret_dict(state: SecretState) -> dict:
    return {
        "name": state.spec.name,
        "title": state.spec.title,
        "owner": state.spec.owner,
        "required": state.spec.required,
        "status": state.status,
        "problems": list(state.problems),
        "rotation_days": state.spec.rotation_days,
        "value_since": state.value_since.isoformat(timespec="seconds")
        if state.value_since
        else None,
        "value_since_known": state.value_since_known,
        "rotation_due": state.rotation_due.isoformat(timespec="seconds")
        if state.rotation_due
        else None,
        "overdue": state.overdue,
        "waiver": state.waiver.reference if state.waiver else None,
        "waived": state.waived,
    }


@dataclass(frozen=True)
class RegisterSummary:
    open: int
    by_risk: dict[str, int]
    awaiting_approval: int
    past_deadline: int
    due_soon: int


def register_summary(*, today=None) -> RegisterSummary:
    """The counts the admin shows above the register."""
    today = today or timezone.localdate()
    open_waivers = Waiver.objects.open()
    by_risk = dict(
        open_waivers.values_list("risk")
        .annotate(n=Count("id"))
        .values_list("risk", "n")
    )
    lead = max(settings.WAIVER_REMINDER_DAYS, default=14)
    return RegisterSummary(
        open=open_waivers.count(),
        by_risk={risk: by_risk.get(risk, 0) for risk in Risk.values},
        awaiting_approval=open_waivers.filter(status="requested").count(),
        past_deadline=open_waivers.filter(deadline__lt=today).count(),
        due_soon=open_waivers.filter(
            deadline__gte=today, deadline__lte=today + timedelta(days=lead)
        ).count(),
    )
