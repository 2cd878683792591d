"""Customers and their wallets.

A customer's e-mail and name may be corrected here by whoever holds
``finance.change_customer`` (no role grants it today), through
finance.services.customers with the reason kept in the customer's history.
Wallets are opened by the product and their balance moves only with the
ledger, so their pages are read-only.
"""

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from finance.admin.common import (
    CurrencyFilter,
    FinanceAdmin,
    ReadOnlyAdmin,
    admin_link,
    changelist_link,
    local_time,
    money,
)
from finance.models import Customer, Wallet
from finance.services.customers import customer_update_contact


class CustomerContactForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=100, help_text="why the contact details change (kept in history)"
    )

    class Meta:
        model = Customer
        fields = ["email", "full_name"]


@admin.register(Customer)
class CustomerAdmin(SimpleHistoryAdmin, FinanceAdmin):
    form = CustomerContactForm
    list_display = [
        "id",
        "email",
        "full_name",
        "country",
        "onboarding_stage",
        "is_blocked",
        "signed_up_at",
    ]
    list_filter = ["is_blocked"]
    # customer_email_upper serves the e-mail match (migration 0005).
    search_fields = ["id", "email__iexact", "reference"]
    search_help_text = "A whole id, e-mail or reference."
    date_hierarchy = "signed_up_at"
    facts = (
        "reference",
        "country",
        "onboarding_stage",
        "is_blocked",
        "signed_up_at",
        "kyc_submitted_at",
        "kyc_approved_at",
        "first_deposit_at",
        "wallets",
        "operations",
    )
    readonly_fields = facts
    fieldsets = [
        ("Contact", {"fields": ("email", "full_name", "change_reason")}),
        ("Customer", {"fields": facts}),
    ]

    def has_add_permission(self, request):
        return False  # customers sign up through the product

    def has_delete_permission(self, request, obj=None):
        return False  # wallets and the ledger point at them

    @admin.display(description="wallets")
    def wallets(self, customer):
        wallets = customer.wallets.order_by("currency")
        if not wallets:
            return "-"
        return format_html_join(
            ", ",
            "{}",
            (
                (admin_link(wallet, money(wallet.balance, wallet.currency)),)
                for wallet in wallets
            ),
        )

    @admin.display(description="operations")
    def operations(self, customer):
        return format_html(
            "{} · {} · {}",
            changelist_link("deposit", "deposits", customer__id__exact=customer.pk),
            changelist_link(
                "withdrawal", "withdrawals", customer__id__exact=customer.pk
            ),
            changelist_link("payout", "payouts", customer__id__exact=customer.pk),
        )

    def save_model(self, request, obj, form, change):
        customer_update_contact(
            customer_id=obj.pk,
            email=form.cleaned_data["email"],
            full_name=form.cleaned_data["full_name"],
            actor=request.user,
            reason=form.cleaned_data["change_reason"],
        )


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer_link", "currency", "balance_label", "created_at"]
    list_select_related = ["customer"]
    list_filter = [CurrencyFilter]
    search_fields = ["id", "customer__id", "customer__email__iexact", "account__id"]
    search_help_text = "A whole wallet id, customer id, customer e-mail or account id."
    fields = (
        "customer_link",
        "currency",
        "balance_label",
        "account_link",
        "created_at_local",
        "operations",
    )

    @admin.display(description="customer", ordering="customer__email")
    def customer_link(self, wallet):
        return admin_link(wallet.customer, wallet.customer.email)

    @admin.display(description="balance", ordering="balance")
    def balance_label(self, wallet):
        return money(wallet.balance, wallet.currency)

    @admin.display(description="ledger account")
    def account_link(self, wallet):
        return format_html(
            "{} ({})",
            admin_link(wallet.account),
            changelist_link(
                "posting", "its postings", account__id__exact=wallet.account_id
            ),
        )

    @admin.display(description="opened")
    def created_at_local(self, wallet):
        return local_time(wallet.created_at)

    @admin.display(description="operations")
    def operations(self, wallet):
        return format_html(
            "{} · {} · {}",
            changelist_link("deposit", "deposits", wallet__id__exact=wallet.pk),
            changelist_link("withdrawal", "withdrawals", wallet__id__exact=wallet.pk),
            changelist_link("payout", "payouts", wallet__id__exact=wallet.pk),
        )
