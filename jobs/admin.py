from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from jobs.models import Job, JobRun, MaintenanceWindow
from jobs.registry import job_find, jobs_all
from jobs.selectors import job_health, job_next_due, jobs_with_status
from jobs.services import job_run_queue, jobs_sync

_BAD = {"failing", "overdue"}
_RED, _GREEN, _BLUE, _GREY = "#cf222e", "#1a7f37", "#0969da", "#6e7781"
_COLOURS = {"ok": _GREEN, "running": _BLUE, "unregistered": _GREY}
_OUTCOME_COLOURS = {
    JobRun.Outcome.SUCCESS: _GREEN,
    JobRun.Outcome.RUNNING: _BLUE,
    JobRun.Outcome.SKIPPED_LOCKED: _GREY,
    JobRun.Outcome.FAILED: _RED,
    JobRun.Outcome.TIMED_OUT: _RED,
}


def _badge(text: str, colour: str):
    return format_html(
        '<strong style="color:#fff;background:{};padding:1px 6px;'
        'border-radius:3px">{}</strong>',
        colour,
        text,
    )


def _beat_schedule(name: str) -> str:
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry.get("task") == "jobs.run_job" and entry.get("args", ())[:1] == (name,):
            return str(entry["schedule"])
    return "not in beat (CronJob or cron)"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "health",
        "last_run",
        "last_success",
        "next_due",
        "failures",
        "schedule",
    ]
    readonly_fields = ["name", "first_seen_at", "lock_token", "lock_expires_at"]
    actions = ["run_now"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return jobs_with_status()

    def changelist_view(self, request, extra_context=None):
        # Jobs declared in code since the last deploy get their rows here.
        jobs_sync()
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="health")
    def health(self, obj):
        word = job_health(obj, job_find(obj.name), timezone.now())
        return _badge(word, _RED if word in _BAD else _COLOURS[word])

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, obj):
        if obj.last_run_at is None:
            return "never"
        url = reverse("admin:jobs_jobrun_changelist") + f"?job={obj.name}"
        return format_html(
            '<a href="{}">{}</a> {}', url, obj.last_run_at, obj.last_outcome
        )

    @admin.display(description="last success", ordering="last_success_at")
    def last_success(self, obj):
        return obj.last_success_at or "never"

    @admin.display(description="next due")
    def next_due(self, obj):
        job = job_find(obj.name)
        return job_next_due(obj, job) if job else "-"

    @admin.display(description="failures in a row", ordering="consecutive_failures")
    def failures(self, obj):
        return obj.consecutive_failures

    @admin.display(description="schedule")
    def schedule(self, obj):
        return _beat_schedule(obj.name)

    @admin.action(
        description="Run now (queued to a worker, trigger=manual)",
        permissions=["change"],
    )
    def run_now(self, request, queryset):
        names = list(queryset.values_list("name", flat=True))
        registered = [name for name in names if job_find(name)]
        skipped = sorted(set(names) - set(registered))
        queued = job_run_queue(names=registered, requested_by=request.user)
        if queued:
            self.message_user(
                request,
                f"Queued {len(queued)} job(s): {', '.join(queued)}. Their runs "
                "appear under job runs; a job already running skips and says so.",
            )
        if skipped:
            self.message_user(
                request,
                f"Skipped {len(skipped)} job(s) no longer declared in code: "
                f"{', '.join(skipped)}.",
                level=messages.WARNING,
            )


class JobNameFilter(admin.SimpleListFilter):
    """The declared jobs, without a DISTINCT over the whole run table."""

    title = "job"
    parameter_name = "job"

    def lookups(self, request, model_admin):
        return [(job.name, job.name) for job in jobs_all()]

    def queryset(self, request, queryset):
        return queryset.filter(job=self.value()) if self.value() else queryset


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "outcome_badge",
        "trigger",
        "started_at",
        "duration_ms",
        "host",
        "counts",
    ]
    list_filter = [JobNameFilter, "outcome", "trigger", "started_at"]
    search_fields = ["job", "error", "host"]
    list_select_related = ["requested_by"]
    # The table grows by a row per run; counting it all on every page is waste.
    show_full_result_count = False
    fields = (
        "job",
        "trigger",
        "requested_by",
        "outcome",
        "host",
        "pid",
        "started_at",
        "finished_at",
        "duration_ms",
        "counts",
        "error",
        "traceback_text",
        "log_text",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return _badge(obj.outcome, _OUTCOME_COLOURS[obj.outcome])

    @admin.display(description="traceback")
    def traceback_text(self, obj):
        return format_html("<pre>{}</pre>", obj.traceback) if obj.traceback else "-"

    @admin.display(description="log lines")
    def log_text(self, obj):
        return format_html("<pre>{}</pre>", obj.log) if obj.log else "-"


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "starts_at", "ends_at", "active", "created_by"]
    list_filter = ["job"]
    fields = ["job", "starts_at", "ends_at", "reason"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.starts_at <= timezone.now() < obj.ends_at
