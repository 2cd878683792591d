from django.db import transaction

from finance.models import Account, Customer, Wallet
from finance.money import validate_currency


def customer_create(*, email: str, full_name: str, country: str, **milestones):
    return Customer.objects.create(
        email=email, full_name=full_name, country=country, **milestones
    )


@transaction.atomic
def wallet_open(*, customer: Customer, currency: str) -> Wallet:
    """Open the customer's wallet in ``currency`` with its ledger account."""
    validate_currency(currency)
    account = Account.objects.create(
        kind=Account.Kind.WALLET,
        currency=currency,
        name=f"wallet {customer.reference} {currency}",
    )
    return Wallet.objects.create(customer=customer, currency=currency, account=account)


@transaction.atomic
def customer_update_contact(
    *, customer_id: int, email: str, full_name: str, actor, reason: str
) -> Customer:
    """Correct a customer's contact details; the reason stays in its history.

    Only contact fields: the country and the onboarding milestones are
    facts of KYC and of the ledger, not something an operator retypes.
    """
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    customer.email = email
    customer.full_name = full_name
    customer._change_reason = reason[:100]  # type: ignore[attr-defined]
    if actor is not None:
        customer._history_user = actor  # type: ignore[attr-defined]
    customer.save(update_fields=["email", "full_name"])
    return customer
