"""The incidents admin, one module per area."""

from incidents.admin import exercises, incidents, matrix, oncall, paging

__all__ = ["exercises", "incidents", "matrix", "oncall", "paging"]
