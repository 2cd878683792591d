"""The daily reports in the admin: a list by day and a readable page per day.

Reports are built only by reconciliation.services.daily_report_build; the
admin shows them and never changes them.
"""

from django.contrib import admin
from django.utils.html import format_html

from opsadmin.admin import ReadOnlyMixin
from reconciliation.models import DailyReport
from reconciliation.services import report_sections


@admin.register(DailyReport)
class DailyReportAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "report_date",
        "operation_count",
        "ledger_transaction_count",
        "exceptions",
        "open_stuck_case_count",
        "built_at",
        "emailed_at",
    ]
    date_hierarchy = "report_date"
    report_fields = (
        "report_date",
        "built_at",
        "emailed_to",
        "emailed_at",
        "content_digest",
    )
    fields = report_fields
    readonly_fields = report_fields
    change_form_template = "admin/reconciliation/dailyreport/change_form.html"

    class Media:
        css = {"all": ["reconciliation/report.css"]}

    @admin.display(
        description="settlement exceptions", ordering="settlement_exception_count"
    )
    def exceptions(self, report):
        count = report.settlement_exception_count
        if not count:
            return "0"
        return format_html('<strong style="color:#b91c1c">{}</strong>', count)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if report is not None:
            context = {**context, "report": report, **report_sections(report)}
        return super().change_view(request, object_id, form_url, context)
