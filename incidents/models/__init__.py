from incidents.models.exercises import (
    Exercise,
    ExerciseNote,
    Inject,
    InjectDelivery,
    Participant,
    Scenario,
)
from incidents.models.incidents import (
    ActionItem,
    Incident,
    IncidentLink,
    Review,
    TimelineEntry,
)
from incidents.models.oncall import (
    OnCallProfile,
    Rotation,
    RotationMember,
    RotationOverride,
)
from incidents.models.paging import EscalationTest, Page, PageNotification
from incidents.models.severities import EscalationStep, RollbackAuthority, Severity

__all__ = [
    "ActionItem",
    "EscalationStep",
    "EscalationTest",
    "Exercise",
    "ExerciseNote",
    "Incident",
    "IncidentLink",
    "Inject",
    "InjectDelivery",
    "OnCallProfile",
    "Page",
    "PageNotification",
    "Participant",
    "Review",
    "RollbackAuthority",
    "Rotation",
    "RotationMember",
    "RotationOverride",
    "Scenario",
    "Severity",
    "TimelineEntry",
]
