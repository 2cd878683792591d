"""The payment provider's HTTP API, as our code calls it.

One client per provider code, configured from ``settings.PROVIDERS[code]``
(base_url, api_key, webhook_secret). Every mutating call carries an
``Idempotency-Key``, so repeating a call whose answer was lost moves the money
once. Failures come back as typed errors that say what the caller may do:

- ``ProviderTimeout``: no answer in time; the call may or may not have taken
  effect, and only a retry with the same key finds out.
- ``ProviderUnavailable``: connection refused, connect timeout, 5xx or 429;
  nothing happened that a retry with the same key could repeat.
- ``ProviderConflict`` (409): the same key is still being processed.
- ``ProviderRejected`` (other 4xx): a definitive no, with the provider's code.
- ``ProviderAuthFailed`` (401/403) and ``ProviderIdempotencyMismatch`` (422 on
  a reused key) are our mistakes, not a verdict on the payout.
- ``ProviderBadResponse``: an answer we cannot read.

Neither the API key nor a bank number ever reaches a log line: requests are
logged by method, path, status and duration only.
"""

import csv
import io
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import requests
import structlog
from django.conf import settings

log = structlog.get_logger(__name__)

SETTLEMENT_COLUMNS = [
    "provider_reference",
    "type",
    "amount",
    "currency",
    "status",
    "settled_at",
]
SETTLEMENT_TYPES = {"payout", "deposit", "payout_return", "chargeback"}


class ProviderError(Exception):
    """A provider call that did not give us the answer we asked for."""

    retryable = False

    def __init__(self, message: str, *, http_status: int | None = None, code=""):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code


class ProviderTimeout(ProviderError):
    retryable = True


class ProviderUnavailable(ProviderError):
    retryable = True


class ProviderConflict(ProviderError):
    retryable = True


class ProviderBadResponse(ProviderError):
    # A 2xx we cannot parse may still have created the object.
    retryable = True


class ProviderRejected(ProviderError):
    pass


class ProviderAuthFailed(ProviderError):
    pass


class ProviderIdempotencyMismatch(ProviderError):
    pass


@dataclass(frozen=True)
class ProviderObject:
    """A payout or deposit as the provider describes it."""

    provider_reference: str
    reference: str
    status: str
    amount: int
    currency: str
    failure_code: str
    http_status: int
    replayed: bool

    @classmethod
    def from_answer(
        cls, data: Any, *, http_status: int, replayed: bool
    ) -> "ProviderObject":
        try:
            amount = data["amount"]
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise TypeError("amount is not an integer")
            return cls(
                provider_reference=str(data["id"]),
                reference=str(data.get("reference") or ""),
                status=str(data["status"]),
                amount=amount,
                currency=str(data["currency"]),
                failure_code=str(data.get("failure_code") or ""),
                http_status=http_status,
                replayed=replayed,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProviderBadResponse(f"unexpected answer: {exc}") from None


@dataclass(frozen=True)
class SettlementLine:
    provider_reference: str
    type: str
    amount: int
    currency: str
    status: str
    settled_at: datetime


class ProviderClient:
    def __init__(self, code: str):
        if code not in settings.PROVIDERS:
            raise ProviderError(f"no provider {code!r} in settings.PROVIDERS")
        config = settings.PROVIDERS[code]
        self.code = code
        self.base_url = config["base_url"].rstrip("/") + "/"
        self._api_key = config["api_key"]
        self.timeout = (
            settings.PROVIDER_CONNECT_TIMEOUT,
            settings.PROVIDER_READ_TIMEOUT,
        )
        self._session = requests.Session()

    def __repr__(self):
        return f"<ProviderClient {self.code} {self.base_url}>"

    def create_payout(
        self,
        *,
        idempotency_key: str,
        reference: str,
        amount: int,
        currency: str,
        destination_label: str,
    ) -> ProviderObject:
        """Ask the provider to send ``amount`` to the customer's bank account.

        The destination is the masked label only: the full account number
        is held by the provider, never by us. A real provider also needs its
        own id of the beneficiary account, which withdrawals do not carry
        yet; the sandbox needs none, and a real integration adds that field
        to Withdrawal and sends it here.
        """
        body = {
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "destination": {"label": destination_label},
        }
        response = self._call(
            "POST", "payouts", json=body, idempotency_key=idempotency_key
        )
        return self._object(response)

    def get_payout(self, provider_reference: str) -> ProviderObject:
        return self._object(self._call("GET", f"payouts/{provider_reference}"))

    def create_deposit(
        self, *, idempotency_key: str, reference: str, amount: int, currency: str
    ) -> ProviderObject:
        """Open a payment intent the customer then pays at the provider."""
        body = {"reference": reference, "amount": amount, "currency": currency}
        response = self._call(
            "POST", "deposits", json=body, idempotency_key=idempotency_key
        )
        return self._object(response)

    def get_deposit(self, provider_reference: str) -> ProviderObject:
        return self._object(self._call("GET", f"deposits/{provider_reference}"))

    def fetch_settlement(self, day: date) -> list[SettlementLine]:
        """The provider's statement of the money it moved on ``day`` (UTC)."""
        return parse_settlement(self.fetch_settlement_csv(day))

    def fetch_settlement_csv(self, day: date) -> str:
        """The same statement as the provider's raw CSV text.

        For the daily reconciliation report, which reports each unreadable
        line instead of refusing the whole file.
        """
        response = self._call("GET", f"settlements/{day.isoformat()}.csv")
        response.encoding = response.encoding or "utf-8"
        return response.text

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict | None = None,
        idempotency_key: str | None = None,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if method != "GET":
            if not idempotency_key:
                raise ValueError("a mutating provider call needs an idempotency key")
            headers["Idempotency-Key"] = idempotency_key
        context = {
            "provider": self.code,
            "method": method,
            "path": path,
            "idempotency_key": idempotency_key,
        }

        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.ConnectTimeout:
            # Checked before Timeout: a connect timeout is also a Timeout,
            # but it means the request never reached the provider.
            log.warning("provider.unreachable", **context, error="connect timeout")
            raise ProviderUnavailable("could not connect in time") from None
        except requests.Timeout:
            log.warning("provider.timeout", **context)
            raise ProviderTimeout(
                f"no answer within {self.timeout[1]} seconds"
            ) from None
        except requests.RequestException as exc:
            log.warning("provider.unreachable", **context, error=type(exc).__name__)
            raise ProviderUnavailable(
                f"could not reach the provider: {type(exc).__name__}"
            ) from None

        log.info(
            "provider.request",
            **context,
            status=response.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )
        if response.status_code >= 400:
            raise _error_for(response)
        return response

    def _object(self, response: requests.Response) -> ProviderObject:
        try:
            data = response.json()
        except ValueError:
            raise ProviderBadResponse(
                "answer is not JSON", http_status=response.status_code
            ) from None
        return ProviderObject.from_answer(
            data,
            http_status=response.status_code,
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )


def _error_for(response: requests.Response) -> ProviderError:
    status = response.status_code
    code, message = "", response.reason or ""
    try:
        error = response.json()["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    text = f"{status} {code}: {message}".strip()
    if status in (401, 403):
        return ProviderAuthFailed(text, http_status=status, code=code)
    if status == 409:
        return ProviderConflict(text, http_status=status, code=code)
    if status == 422 and code == "idempotency_key_reused":
        return ProviderIdempotencyMismatch(text, http_status=status, code=code)
    if status == 429 or status >= 500:
        return ProviderUnavailable(text, http_status=status, code=code)
    return ProviderRejected(text, http_status=status, code=code)


def parse_settlement(text: str) -> list[SettlementLine]:
    """Read a settlement CSV; refuse the whole file if any line is wrong."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != SETTLEMENT_COLUMNS:
        raise ProviderBadResponse(f"settlement header is {header}")
    lines = []
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            reference, kind, amount, currency, status, settled_at = row
            line = SettlementLine(
                provider_reference=reference,
                type=kind,
                amount=int(amount),
                currency=currency,
                status=status,
                settled_at=datetime.fromisoformat(settled_at),
            )
        except ValueError as exc:
            raise ProviderBadResponse(f"settlement line {number}: {exc}") from None
        if line.type not in SETTLEMENT_TYPES or line.settled_at.tzinfo is None:
            raise ProviderBadResponse(f"settlement line {number} is not valid")
        lines.append(line)
    return lines


def provider_client(code: str) -> ProviderClient:
    return ProviderClient(code)
