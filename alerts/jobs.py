"""Retention of alert history (found by jobs.apps.JobsConfig.ready)."""

from django.db.models import Q

from jobs.retention import retention_register

# Finished deliveries and their attempts; pending ones are still being sent.
retention_register(
    name="alert_deliveries",
    model="alerts.Delivery",
    date_field="created_at",
    default_days=90,
    condition=~Q(status="pending"),
)
retention_register(
    name="alerts",
    model="alerts.Alert",
    date_field="resolved_at",
    default_days=180,
    condition=Q(status="resolved"),
)
