"""Every write of the incidents app.

- ``incidents``: declare, post updates, status, severity, commander, links,
  rollback and kill-switch orders, reviews, update reminders;
- ``paging``: start, advance and acknowledge escalations; escalation tests;
- ``exercises``: run and complete tabletop exercises.

The names other apps use are re-exported here.
"""

from incidents.services.incidents import (
    IncidentError,
    incident_declare,
    incident_link_add,
    incident_post,
)
from incidents.services.paging import page_acknowledge, pages_advance

__all__ = [
    "IncidentError",
    "incident_declare",
    "incident_link_add",
    "incident_post",
    "page_acknowledge",
    "pages_advance",
]
