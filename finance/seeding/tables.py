"""The tables the seeder fills, in the order their foreign keys need.

Each table lists the model attributes a generated row holds, in row order,
and which of them are times (epoch seconds in the row) or JSON, so that a
writer can turn a row into COPY text or a model instance.
"""

from dataclasses import dataclass, field

from django.apps import apps


@dataclass(frozen=True)
class Table:
    label: str  # "app_label.Model"
    columns: tuple[str, ...]
    times: frozenset[str] = field(default_factory=frozenset)
    json: frozenset[str] = frozenset()

    @property
    def model(self):
        return apps.get_model(self.label)

    @property
    def key(self) -> str:
        return self.label.split(".")[1].lower()


def _table(label: str, columns: str, times: str = "", json: str = "") -> Table:
    return Table(
        label,
        tuple(columns.split()),
        frozenset(times.split()),
        frozenset(json.split()),
    )


_OPERATION = "id reference customer_id wallet_id amount currency provider "
_OPERATION += "provider_reference state state_changed_at version created_at"
_TRANSITION = "id operation_id from_state to_state via reason "
_TRANSITION += "ledger_transaction_id created_at"

TABLES = [
    _table(
        "finance.Customer",
        "id reference email full_name country signed_up_at kyc_submitted_at "
        "kyc_approved_at first_deposit_at is_blocked",
        "signed_up_at kyc_submitted_at kyc_approved_at first_deposit_at",
    ),
    _table(
        "finance.Account", "id kind currency provider name created_at", "created_at"
    ),
    _table(
        "finance.Wallet",
        "id customer_id currency account_id balance created_at",
        "created_at",
    ),
    _table("finance.Deposit", _OPERATION, "state_changed_at created_at"),
    _table(
        "finance.Withdrawal",
        _OPERATION + " fee destination_label",
        "state_changed_at created_at",
    ),
    _table(
        "finance.Payout",
        _OPERATION + " withdrawal_id idempotency_key attempt_count last_error "
        "submitted_at settled_at",
        "state_changed_at created_at submitted_at settled_at",
    ),
    _table(
        "finance.PayoutAttempt",
        "id payout_id number started_at finished_at duration_ms outcome "
        "http_status error",
        "started_at finished_at",
    ),
    _table(
        "finance.LedgerTransaction",
        "id idempotency_key kind operation_kind operation_id memo created_at",
        "created_at",
    ),
    _table(
        "finance.Posting",
        "id transaction_id account_id amount currency created_at",
        "created_at",
    ),
    _table("finance.DepositTransition", _TRANSITION, "created_at"),
    _table("finance.WithdrawalTransition", _TRANSITION, "created_at"),
    _table("finance.PayoutTransition", _TRANSITION, "created_at"),
    _table(
        "finance.WebhookDelivery",
        "id provider received_at event_id event_type outcome http_status error "
        "processing_ms payload operation_kind operation_id",
        "received_at",
        "payload",
    ),
    _table(
        "finance.WebhookEvent",
        "id provider event_id event_type applied_at",
        "applied_at",
    ),
    # Only when the sandbox app is installed (the writer skips it otherwise).
    _table(
        "sandbox.SandboxSettlementLine",
        "id provider_reference type amount currency status settled_at omitted note",
        "settled_at",
    ),
]

BY_KEY = {table.key: table for table in TABLES}
