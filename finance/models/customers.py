import uuid

from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from simple_history.models import HistoricalRecords


class Customer(models.Model):
    """A customer of the wallet platform and their onboarding milestones.

    The milestone timestamps feed the onboarding funnel: each is set once,
    when the customer first reaches it.
    """

    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    signed_up_at = models.DateTimeField(default=timezone.now, db_index=True)
    kyc_submitted_at = models.DateTimeField(null=True, blank=True)
    kyc_approved_at = models.DateTimeField(null=True, blank=True)
    first_deposit_at = models.DateTimeField(null=True, blank=True)
    is_blocked = models.BooleanField(default=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-signed_up_at"]
        indexes = [
            # The admin's search by e-mail, matched case-insensitively:
            # email__iexact is UPPER(email) = UPPER(%s) on PostgreSQL, which
            # the unique index on email itself cannot serve.
            models.Index(Upper("email"), name="customer_email_upper"),
        ]

    def __str__(self):
        return self.full_name or self.email

    @property
    def onboarding_stage(self) -> str:
        if self.first_deposit_at:
            return "deposited"
        if self.kyc_approved_at:
            return "kyc approved"
        if self.kyc_submitted_at:
            return "kyc submitted"
        return "signed up"


class Wallet(models.Model):
    """One customer's money in one currency.

    ``balance`` is a cache of the sum of the postings on ``account``. Only
    finance.services.ledger changes it, in the transaction that writes the
    postings; deep reconciliation proves that the two agree. Its history is
    the ledger itself, so the model keeps no history table of its own.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="wallets"
    )
    currency = models.CharField(max_length=3)
    account = models.OneToOneField(
        "finance.Account", on_delete=models.PROTECT, related_name="wallet"
    )
    balance = models.BigIntegerField(default=0, help_text="minor units")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "currency"], name="wallet_one_per_currency"
            )
        ]

    def __str__(self):
        return f"{self.customer} {self.currency}"
