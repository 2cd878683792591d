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
