"""The sandbox provider's HTTP API under /sandbox/v1/.

Every endpoint wants ``Authorization: Bearer <PROVIDERS["sandbox"]["api_key"]>``
and answers JSON; errors look like ``{"error": {"code", "message"}}``.

    POST v1/payouts                    create (Idempotency-Key required)
    GET  v1/payouts/<id>
    POST v1/deposits                   create a payment intent (idem.)
    GET  v1/deposits/<id>
    GET  v1/settlements/<YYYY-MM-DD>.csv
    POST v1/control/payouts/<id>/<settle|fail|return|reverse>
    POST v1/control/deposits/<id>/<settle|fail|charge_back>
    POST v1/control/plans              {"reference", "behaviour"}
    POST v1/control/discrepancies      {"kind", "provider_reference", ...}

Control bodies are optional JSON: ``failure_code`` and ``send_webhook``
(default true) for the settle and fail actions.
"""

import hmac
import json
import re
from datetime import date
from functools import wraps

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import services
from sandbox.idempotency import Answer, error_body, idempotent
from sandbox.models import Behaviour, SandboxDeposit, SandboxPayout
from sandbox.services import SandboxError

BEHAVIOUR_HEADER = "Sandbox-Behaviour"


def _api(*methods: str):
    """Authenticate, allow ``methods`` only, and turn SandboxError into JSON."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            expected = f"Bearer {settings.PROVIDERS['sandbox']['api_key']}"
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return _error(401, "unauthenticated", "invalid API key")
            if request.method not in methods:
                return _error(405, "method_not_allowed", f"use {' or '.join(methods)}")
            try:
                return view(request, *args, **kwargs)
            except SandboxError as exc:
                return _error(exc.status, exc.code, exc.message)

        return wrapper

    return decorate


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def _invalid(message: str) -> SandboxError:
    return SandboxError(message, status=400, code="invalid_request")


def _body(request, *, optional: bool = False) -> dict:
    if optional and not request.body:
        return {}
    try:
        params = json.loads(request.body)
    except ValueError:
        raise _invalid("body is not JSON") from None
    if not isinstance(params, dict):
        raise _invalid("body is not a JSON object")
    return params


def _money_params(params: dict) -> tuple[str, int, str]:
    reference, amount, currency = (
        params.get("reference"),
        params.get("amount"),
        params.get("currency"),
    )
    if not isinstance(reference, str) or not 0 < len(reference) <= 100:
        raise _invalid("reference must be a string of 1 to 100 characters")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise _invalid("amount must be a positive integer of minor units")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise _invalid("currency must be an ISO 4217 code")
    return reference, amount, currency


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not 0 < len(key) <= 255:
        raise _invalid("an Idempotency-Key header of 1 to 255 characters is required")
    return key


def _behaviour(request, params: dict, reference: str) -> str:
    field = params.get("sandbox_behaviour")
    if field is not None and not isinstance(field, str):
        raise _invalid("sandbox_behaviour must be a string")
    return services.behaviour_for(
        header=request.headers.get(BEHAVIOUR_HEADER), field=field, reference=reference
    )


def _slow(behaviour: str) -> float:
    return settings.SANDBOX_TIMEOUT_SECONDS if behaviour == Behaviour.TIMEOUT else 0


@_api("POST")
def payouts(request):
    params = _body(request)
    reference, amount, currency = _money_params(params)
    destination = params.get("destination")
    label = destination.get("label") if isinstance(destination, dict) else None
    if not isinstance(label, str) or not 0 < len(label) <= 120:
        raise _invalid("destination.label must be a string of 1 to 120 characters")
    key = _idempotency_key(request)
    behaviour = _behaviour(request, params, reference)

    def handle() -> Answer:
        if behaviour == Behaviour.REJECT:
            return Answer(
                422, error_body("payout_rejected", "the bank refused the transfer")
            )
        payout = services.sandbox_payout_create(
            reference=reference,
            amount=amount,
            currency=currency,
            destination_label=label,
            behaviour=behaviour,
        )
        return Answer(201, services.payout_json(payout), delay=_slow(behaviour))

    return idempotent(
        key=key, method="POST", path=request.path, params=params, handle=handle
    )


@_api("GET")
def payout_detail(request, provider_reference):
    payout = SandboxPayout.objects.filter(provider_reference=provider_reference).first()
    if payout is None:
        return _error(404, "not_found", f"no payout {provider_reference}")
    return JsonResponse(services.payout_json(payout))


@_api("POST")
def deposits(request):
    params = _body(request)
    reference, amount, currency = _money_params(params)
    key = _idempotency_key(request)
    behaviour = _behaviour(request, params, reference)

    def handle() -> Answer:
        if behaviour == Behaviour.REJECT:
            return Answer(
                422, error_body("deposit_rejected", "the payment was refused")
            )
        deposit = services.sandbox_deposit_create(
            reference=reference, amount=amount, currency=currency, behaviour=behaviour
        )
        return Answer(201, services.deposit_json(deposit), delay=_slow(behaviour))

    return idempotent(
        key=key, method="POST", path=request.path, params=params, handle=handle
    )


@_api("GET")
def deposit_detail(request, provider_reference):
    deposit = SandboxDeposit.objects.filter(
        provider_reference=provider_reference
    ).first()
    if deposit is None:
        return _error(404, "not_found", f"no deposit {provider_reference}")
    return JsonResponse(services.deposit_json(deposit))


@_api("GET")
def settlement(request, day):
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return _error(404, "not_found", f"no settlement for {day}")
    return HttpResponse(
        services.sandbox_settlement_csv(parsed), content_type="text/csv; charset=utf-8"
    )


# --- control API ---------------------------------------------------------


def _control_options(request) -> tuple[str, bool]:
    params = _body(request, optional=True)
    failure_code = params.get("failure_code") or ""
    send_webhook = params.get("send_webhook", True)
    if not isinstance(failure_code, str) or not isinstance(send_webhook, bool):
        raise _invalid("failure_code must be a string and send_webhook a boolean")
    return failure_code, send_webhook


@_api("POST")
def control_payout(request, provider_reference, action):
    failure_code, send_webhook = _control_options(request)
    common = {"provider_reference": provider_reference, "send_webhook": send_webhook}
    if action == "settle":
        payout = services.sandbox_payout_settle(outcome="paid", **common)
    elif action == "fail":
        payout = services.sandbox_payout_settle(
            outcome="failed", failure_code=failure_code, **common
        )
    elif action in ("return", "reverse"):
        payout = services.sandbox_payout_return(reversed=action == "reverse", **common)
    else:
        return _error(404, "not_found", f"no payout action {action}")
    return JsonResponse(services.payout_json(payout))


@_api("POST")
def control_deposit(request, provider_reference, action):
    failure_code, send_webhook = _control_options(request)
    common = {"provider_reference": provider_reference, "send_webhook": send_webhook}
    if action == "settle":
        deposit = services.sandbox_deposit_settle(outcome="succeeded", **common)
    elif action == "fail":
        deposit = services.sandbox_deposit_settle(
            outcome="failed", failure_code=failure_code, **common
        )
    elif action == "charge_back":
        deposit = services.sandbox_deposit_charge_back(**common)
    else:
        return _error(404, "not_found", f"no deposit action {action}")
    return JsonResponse(services.deposit_json(deposit))


@_api("POST")
def control_plan(request):
    params = _body(request)
    reference, behaviour = params.get("reference"), params.get("behaviour")
    if not isinstance(reference, str) or not isinstance(behaviour, str):
        raise _invalid("reference and behaviour must be strings")
    plan = services.sandbox_plan(reference=reference, behaviour=behaviour)
    return JsonResponse({"reference": plan.reference, "behaviour": plan.behaviour})


@_api("POST")
def control_discrepancy(request):
    params = _body(request)
    fields = {}
    for name in ("kind", "provider_reference", "currency", "type"):
        if params.get(name) is not None:
            if not isinstance(params[name], str):
                raise _invalid(f"{name} must be a string")
            fields[name] = params[name]
    if params.get("amount") is not None:
        amount = params["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _invalid("amount must be a positive integer")
        fields["amount"] = amount
    if params.get("day") is not None:
        try:
            fields["day"] = date.fromisoformat(str(params["day"]))
        except ValueError:
            raise _invalid("day must be YYYY-MM-DD") from None
    if "kind" not in fields:
        raise _invalid("kind is required")
    line = services.sandbox_plant_discrepancy(**fields)
    return JsonResponse(
        {
            "provider_reference": line.provider_reference,
            "type": line.type,
            "amount": line.amount,
            "currency": line.currency,
            "settled_at": line.settled_at.isoformat(),
            "omitted": line.omitted,
            "note": line.note,
        },
        status=201,
    )
