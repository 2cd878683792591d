"""The ledger: accounts, journal transactions and their postings.

Read-only for everyone, superusers included: the ledger is append-only (the
database refuses UPDATE and DELETE, migration 0002) and only
finance.services writes it. These are the largest tables of the platform,
so the lists count with an estimate and search whole ids and keys only.
"""

from django.contrib import admin

from finance.admin.common import (
    CurrencyFilter,
    ProviderFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
    RecentFilter,
    admin_link,
    change_link,
    changelist_link,
    money,
)
from finance.models import Account, LedgerTransaction, Posting


def operation_link(kind: str, pk):
    """The operation a transaction or a delivery names (not a foreign key)."""
    if not kind or pk is None:
        return "-"
    return change_link("finance", kind, pk, f"{kind} {pk}")


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "kind", "currency", "provider", "wallet_link"]
    list_select_related = ["wallet"]
    list_filter = ["kind", CurrencyFilter, ProviderFilter]
    search_fields = ["id", "wallet__id"]
    search_help_text = "A whole account id or wallet id."
    fields = ("name", "kind", "currency", "provider", "wallet_link", "postings")

    @admin.display(description="wallet")
    def wallet_link(self, account):
        wallet = getattr(account, "wallet", None)
        if wallet is None:
            return "-"
        return admin_link(wallet, f"wallet {wallet.pk}")

    @admin.display(description="postings")
    def postings(self, account):
        # No sum here: a platform account has millions of postings, and its
        # balance is the business of reconciliation, not of a page view.
        return changelist_link(
            "posting", "postings on this account", account__id__exact=account.pk
        )


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ("account", "signed_amount", "currency", "created_at")
    ordering = ["pk"]

    @admin.display(description="amount")
    def signed_amount(self, posting):
        return money(posting.amount, posting.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "idempotency_key",
        "kind",
        "operation",
        "memo",
        "created_by",
        "created_at",
    ]
    list_select_related = ["created_by"]
    # created_at is indexed (RecentFilter); no date hierarchy on this table.
    list_filter = [RecentFilter, "kind", "operation_kind"]
    search_fields = ["id", "idempotency_key", "operation_id"]
    search_help_text = "A whole transaction id, idempotency key or operation id."
    fields = (
        "idempotency_key",
        "kind",
        "operation",
        "reverses_link",
        "memo",
        "created_by",
        "created_at",
    )
    inlines = [PostingInline]

    @admin.display(description="operation")
    def operation(self, tx):
        return operation_link(tx.operation_kind, tx.operation_id)

    @admin.display(description="reverses")
    def reverses_link(self, tx):
        return admin_link(tx.reverses) if tx.reverses_id else "-"


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "transaction_link",
        "account_link",
        "signed_amount",
        "currency",
        "created_at",
    ]
    list_select_related = ["transaction", "account"]
    # No date hierarchy: created_at is not indexed on this table, and the
    # transaction list has one. No filter on the account's kind either: it
    # would join every posting to its account.
    list_filter = [CurrencyFilter]
    search_fields = ["id", "transaction__id", "transaction__idempotency_key"]
    search_help_text = "A whole posting id, transaction id or idempotency key."
    fields = (
        "transaction_link",
        "account_link",
        "signed_amount",
        "currency",
        "created_at",
    )

    @admin.display(description="transaction")
    def transaction_link(self, posting):
        return admin_link(posting.transaction)

    @admin.display(description="account")
    def account_link(self, posting):
        return admin_link(posting.account)

    @admin.display(description="amount")
    def signed_amount(self, posting):
        return money(posting.amount, posting.currency)
