"""Admin of the deep scan: scan history with live progress, the tickets an
operator works on, and the deliveries to the external tracker.

Scans, ranges and findings are read-only records. A ticket's owner, status,
priority and notes are changed through reconciliation.services.tickets, with
the reason kept in the ticket's history.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from opsadmin.admin import ReadOnlyAdmin
from reconciliation.models import (
    DeepScan,
    Finding,
    ReconciliationTicket,
    ScanRange,
    TicketDelivery,
    TicketDeliveryAttempt,
)
from reconciliation.services.tickets import ticket_deliveries_retry, ticket_update


def _admin_link(model: str, pk, label=None):
    """A link to finance's admin page of ``pk`` when that admin exists."""
    if pk is None:
        return "-"
    try:
        url = reverse(f"admin:finance_{model}_change", args=[pk])
    except NoReverseMatch:
        return label or pk
    return format_html('<a href="{}">{}</a>', url, label or pk)


def _money(value: int) -> str:
    return f"{value:+,}" if value else "0"


class ScanRangeInline(admin.TabularInline):
    model = ScanRange
    fields = (
        "position",
        "kind",
        "lo",
        "hi",
        "status",
        "claimed_by",
        "run",
        "rows_scanned",
        "findings_count",
        "duration_ms",
    )
    readonly_fields = fields
    can_delete = False
    extra = 0
    classes = ["collapse"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DeepScan)
class DeepScanAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "via",
        "started_at",
        "finished_at",
        "progress",
        "rows",
        "findings_count",
        "tickets",
    ]
    list_filter = ["status", "via"]
    readonly_fields = (
        "status",
        "checks",
        "via",
        "settle_tickets",
        "database_alias",
        "started_at",
        "finished_at",
        "runs",
        "snapshot_id",
        "progress",
        "rows",
        "findings_link",
        "tickets",
        "error",
    )
    fields = readonly_fields
    inlines = [ScanRangeInline]
    actions = ["resume"]

    @admin.display(description="ranges done")
    def progress(self, scan):
        share = scan.ranges_done / scan.ranges_total if scan.ranges_total else 1
        return f"{scan.ranges_done}/{scan.ranges_total} ({share:.0%})"

    @admin.display(description="rows scanned", ordering="rows_scanned")
    def rows(self, scan):
        return f"{scan.rows_scanned:,}"

    @admin.display(description="tickets opened / updated / closed")
    def tickets(self, scan):
        if not scan.settle_tickets:
            return "dry run"
        return f"{scan.tickets_opened} / {scan.tickets_updated} / {scan.tickets_closed}"

    @admin.display(description="findings")
    def findings_link(self, scan):
        url = reverse("admin:reconciliation_finding_changelist")
        return format_html(
            '<a href="{}?scan__id__exact={}">{} findings</a>',
            url,
            scan.pk,
            scan.findings_count,
        )

    def has_resume_permission(self, request):
        return request.user.has_perm("reconciliation.resume_deepscan")

    @admin.action(
        description="Resume the selected interrupted scans", permissions=["resume"]
    )
    def resume(self, request, queryset):
        from reconciliation.tasks import deep_reconcile_resume

        resumable = list(queryset.filter(status=DeepScan.Status.INTERRUPTED))
        if len(resumable) > 1:
            self.message_user(
                request,
                "Resume one scan at a time: scans run one after the other.",
                messages.WARNING,
            )
            return
        skipped = queryset.count() - len(resumable)
        for scan in resumable:
            deep_reconcile_resume.delay(scan.pk)
        self.message_user(
            request,
            f"{len(resumable)} scan queued to resume; {skipped} skipped "
            "(only interrupted scans can resume).",
        )


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "scan",
        "invariant",
        "subject_key",
        "currency",
        "expected",
        "actual",
        "difference",
        "ticket",
    ]
    list_filter = ["invariant", "currency"]
    search_fields = ["subject_key"]
    list_select_related = ["scan", "ticket"]
    show_full_result_count = False


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "open"), ("no", "closed")]

    def queryset(self, request, queryset):
        closed = Q(status=ReconciliationTicket.Status.CLOSED)
        if self.value() == "yes":
            return queryset.exclude(closed)
        if self.value() == "no":
            return queryset.filter(closed)
        return queryset


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    AGES = {"week": (0, 7), "month": (7, 30), "older": (30, None)}

    def lookups(self, request, model_admin):
        return [
            ("week", "opened this week"),
            ("month", "7 to 30 days old"),
            ("older", "older than 30 days"),
        ]

    def queryset(self, request, queryset):
        age = self.value()
        if age not in self.AGES:
            return queryset
        newest, oldest = self.AGES[age]
        now = timezone.now()
        queryset = queryset.filter(opened_at__lte=now - timedelta(days=newest))
        if oldest is not None:
            queryset = queryset.filter(opened_at__gt=now - timedelta(days=oldest))
        return queryset


class TicketForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=100, help_text="why you change this ticket (kept in its history)"
    )

    class Meta:
        model = ReconciliationTicket
        fields = ["owner", "status", "priority", "note"]


@admin.register(ReconciliationTicket)
class ReconciliationTicketAdmin(SimpleHistoryAdmin):
    form = TicketForm
    list_display = [
        "id",
        "invariant",
        "subject",
        "currency",
        "signed_difference",
        "priority",
        "amount_band",
        "status",
        "owner",
        "opened_at",
        "last_seen_at",
        "observation_count",
    ]
    list_filter = [
        OpenFilter,
        "status",
        "currency",
        "invariant",
        "amount_band",
        AgeFilter,
        "priority",
    ]
    search_fields = ["subject_key"]
    list_select_related = ["owner"]
    readonly_fields = [
        "invariant",
        "subject",
        "currency",
        "expected",
        "actual",
        "signed_difference",
        "amount_band",
        "wallet_link",
        "suspects",
        "opened_at",
        "last_seen_at",
        "closed_at",
        "close_note",
        "first_scan",
        "last_scan",
        "observation_count",
        "observations_table",
    ]
    fieldsets = [
        (None, {"fields": ["owner", "status", "priority", "note", "change_reason"]}),
        ("Mismatch", {"fields": readonly_fields}),
    ]

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="latest observations")
    def observations_table(self, ticket):
        rows = ticket.observations.order_by("-id")[:20]
        return format_html_join(
            "",
            "<div>scan {} at {}: expected {}, actual {}, difference {}</div>",
            (
                (o.scan_id, o.observed_at, o.expected, o.actual, _money(o.difference))
                for o in rows
            ),
        )

    @admin.display(description="subject", ordering="subject_key")
    def subject(self, ticket):
        return ticket.subject_key

    @admin.display(description="difference", ordering="difference")
    def signed_difference(self, ticket):
        return _money(ticket.difference)

    @admin.display(description="wallet")
    def wallet_link(self, ticket):
        return _admin_link("wallet", ticket.wallet_id)

    @admin.display(description="suspect transactions")
    def suspects(self, ticket):
        ids = ticket.suspect_transaction_ids
        if not ids:
            return "-"
        links = ((_admin_link("ledgertransaction", pk),) for pk in ids)
        return format_html_join(", ", "{}", links)

    def save_model(self, request, obj, form, change):
        # Through the service: who and why go to the history, the tracker
        # hears of it. The form's instance is not saved directly.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        changes.pop("change_reason", None)
        if changes:
            ticket_update(
                ticket_id=obj.pk,
                actor=request.user,
                reason=form.cleaned_data["change_reason"],
                **changes,
            )


class DeliveryAttemptInline(admin.TabularInline):
    model = TicketDeliveryAttempt
    fields = ("number", "started_at", "duration_ms", "http_status", "error")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TicketDelivery)
class TicketDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "ticket",
        "event",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    )
    list_filter = ["status", "event"]
    readonly_fields = (*list_display, "payload")
    fields = readonly_fields
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    def has_resend_permission(self, request):
        return request.user.has_perm("reconciliation.resend_ticketdelivery")

    @admin.action(
        description="Send the selected failed deliveries again",
        permissions=["resend"],
    )
    def retry(self, request, queryset):
        queued, skipped = ticket_deliveries_retry(
            delivery_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request,
            f"{queued} queued again; {skipped} skipped (only failed deliveries "
            "are sent again, pending ones are still being retried).",
        )
