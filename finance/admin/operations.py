"""Deposits, withdrawals and payouts, with their transitions and attempts.

Read-only for everyone: a state or an amount changes only through
finance.services (the state machine, its transition and its postings in one
transaction), or through the overrides app's two-person flow. Each page
links the way money flows: withdrawal -> payout -> attempts and
transitions, each operation -> its journal transactions and webhook
deliveries.
"""

from typing import ClassVar

from django.contrib import admin
from django.utils.html import format_html_join
from simple_history.admin import SimpleHistoryAdmin

from finance.admin.common import (
    CurrencyFilter,
    ProviderFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
    admin_link,
    age_in_state,
    changelist_link,
    money,
    safe_text,
)
from finance.models import (
    Deposit,
    DepositTransition,
    LedgerTransaction,
    Payout,
    PayoutAttempt,
    PayoutTransition,
    Withdrawal,
    WithdrawalTransition,
)

OPERATION_FIELDS: tuple[str, ...] = (
    "reference",
    "customer_link",
    "wallet_link",
    "amount_label",
    "state",
    "age_in_state",
    "provider",
    "provider_reference",
    "version",
    "created_at",
    "ledger",
    "deliveries",
)


class TransitionInline(ReadOnlyInline):
    fields = (
        "created_at",
        "from_state",
        "to_state",
        "via",
        "actor",
        "reason",
        "ledger_transaction",
    )
    ordering = ["created_at", "id"]
    show_change_link = False


class DepositTransitionInline(TransitionInline):
    model = DepositTransition


class WithdrawalTransitionInline(TransitionInline):
    model = WithdrawalTransition


class PayoutTransitionInline(TransitionInline):
    model = PayoutTransition


class PayoutAttemptInline(ReadOnlyInline):
    model = PayoutAttempt
    fields = (
        "number",
        "started_at",
        "outcome",
        "http_status",
        "duration_ms",
        "error_text",
        "triggered_by",
    )
    ordering = ["number"]

    @admin.display(description="error")
    def error_text(self, attempt):
        return safe_text(attempt.error)


class OperationAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    """What deposits, withdrawals and payouts share."""

    list_display = [
        "id",
        "state",
        "amount_label",
        "age_in_state",
        "provider",
        "provider_reference",
        "customer_link",
        "created_at",
    ]
    list_select_related = ["customer"]
    list_filter = ["state", CurrencyFilter, ProviderFilter]
    # The provider_reference indexes of migration 0005 serve the reference.
    search_fields = [
        "id",
        "reference",
        "provider_reference",
        "customer__email__iexact",
        "wallet__id",
    ]
    search_help_text = (
        "A whole id, reference, provider reference, customer e-mail or wallet id."
    )
    # created_at is indexed. The drill-down's first level still reads the
    # DISTINCT years of the whole table: acceptable at a million operations,
    # not at the ledger's tens of millions (those lists use RecentFilter).
    date_hierarchy = "created_at"
    fields: ClassVar[tuple[str, ...]] = OPERATION_FIELDS

    @admin.display(description="amount", ordering="amount")
    def amount_label(self, operation):
        return money(operation.amount, operation.currency)

    @admin.display(description="in state for", ordering="state_changed_at")
    def age_in_state(self, operation):
        return age_in_state(operation)

    @admin.display(description="customer")
    def customer_link(self, operation):
        return admin_link(operation.customer, operation.customer.email)

    @admin.display(description="wallet")
    def wallet_link(self, operation):
        return admin_link(operation.wallet, f"wallet {operation.wallet_id}")

    @admin.display(description="journal transactions")
    def ledger(self, operation):
        kind = operation._meta.model_name
        # ledgertx_operation serves this; an operation has one to three.
        txs = LedgerTransaction.objects.filter(
            operation_kind=kind, operation_id=operation.pk
        ).order_by("pk")
        if not txs:
            return "-"
        return format_html_join(
            ", ", "{}", ((admin_link(tx, f"{tx.kind} {tx.pk}"),) for tx in txs)
        )

    @admin.display(description="webhook deliveries")
    def deliveries(self, operation):
        return changelist_link(
            "webhookdelivery",
            "deliveries about it",
            operation_kind=operation._meta.model_name,
            operation_id=operation.pk,
        )


@admin.register(Deposit)
class DepositAdmin(OperationAdmin):
    inlines = [DepositTransitionInline]


@admin.register(Withdrawal)
class WithdrawalAdmin(OperationAdmin):
    list_display = [*OperationAdmin.list_display, "fee_label"]
    fields = (
        *OPERATION_FIELDS[:4],
        "fee_label",
        "destination_label",
        *OPERATION_FIELDS[4:],
        "payout_link",
    )
    inlines = [WithdrawalTransitionInline]

    @admin.display(description="fee")
    def fee_label(self, withdrawal):
        return money(withdrawal.fee, withdrawal.currency)

    @admin.display(description="payout")
    def payout_link(self, withdrawal):
        payout = Payout.objects.filter(withdrawal=withdrawal).first()
        return admin_link(payout) if payout else "-"


@admin.register(Payout)
class PayoutAdmin(OperationAdmin):
    list_display = [*OperationAdmin.list_display, "attempt_count"]
    search_fields = [*OperationAdmin.search_fields, "idempotency_key"]
    search_help_text = (
        "A whole id, reference, provider reference, idempotency key, "
        "customer e-mail or wallet id."
    )
    fields = (
        "withdrawal_link",
        *OPERATION_FIELDS[:-2],
        "idempotency_key",
        "attempt_count",
        "last_error_text",
        "submitted_at",
        "settled_at",
        *OPERATION_FIELDS[-2:],
    )
    inlines = [PayoutAttemptInline, PayoutTransitionInline]

    @admin.display(description="withdrawal")
    def withdrawal_link(self, payout):
        return admin_link(payout.withdrawal)

    @admin.display(description="last error")
    def last_error_text(self, payout):
        return safe_text(payout.last_error)


class ToStateFilter(admin.SimpleListFilter):
    """The operation's states as choices: no SELECT DISTINCT over transitions."""

    title = "to state"
    parameter_name = "to_state"

    def lookups(self, request, model_admin):
        operation = model_admin.model._meta.get_field("operation").related_model
        return operation._meta.get_field("state").choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(to_state=self.value())
        return queryset


class TransitionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "operation_link",
        "from_state",
        "to_state",
        "via",
        "actor",
        "created_at",
    ]
    list_select_related = ["operation", "actor"]
    list_filter = [ToStateFilter]
    search_fields = ["id", "operation__id"]
    search_help_text = "A whole transition id or operation id."
    fields = (
        "operation_link",
        "from_state",
        "to_state",
        "via",
        "actor",
        "reason",
        "ledger_transaction",
        "created_at",
    )

    @admin.display(description="operation")
    def operation_link(self, transition):
        return admin_link(transition.operation)


admin.site.register(DepositTransition, TransitionAdmin)
admin.site.register(WithdrawalTransition, TransitionAdmin)
admin.site.register(PayoutTransition, TransitionAdmin)


@admin.register(PayoutAttempt)
class PayoutAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "payout_link",
        "number",
        "outcome",
        "http_status",
        "duration_ms",
        "started_at",
    ]
    list_select_related = ["payout"]
    list_filter = ["outcome"]
    search_fields = ["id", "payout__id", "payout__provider_reference"]
    search_help_text = "A whole attempt id, payout id or payout provider reference."
    fields = (
        "payout_link",
        "number",
        "outcome",
        "http_status",
        "started_at",
        "finished_at",
        "duration_ms",
        "error_text",
        "triggered_by",
    )

    @admin.display(description="payout")
    def payout_link(self, attempt):
        return admin_link(attempt.payout)

    @admin.display(description="error")
    def error_text(self, attempt):
        return safe_text(attempt.error)
