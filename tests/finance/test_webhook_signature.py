"""Webhook signature checks, with the clock given, not read."""

import hashlib
import hmac

import pytest

from finance.webhooks import BadSignature, StaleSignature, signature_verify

BODY = b'{"id":"evt_1"}'
NOW = 1_700_000_000


def _v1(secret, timestamp=NOW, body=BODY):
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _verify(header, secrets=("whsec_new",), now=NOW, tolerance=300):
    return signature_verify(
        header=header, body=BODY, secrets=list(secrets), tolerance=tolerance, now=now
    )


def test_it_returns_the_signed_timestamp():
    assert _verify(f"t={NOW},v1={_v1('whsec_new')}") == NOW


def test_old_and_new_secrets_both_verify_during_a_rotation():
    secrets = ["whsec_old", "whsec_new"]

    assert _verify(f"t={NOW},v1={_v1('whsec_old')}", secrets) == NOW
    assert _verify(f"t={NOW},v1={_v1('whsec_new')}", secrets) == NOW


def test_any_of_several_v1_values_may_match():
    header = f"t={NOW},v1={_v1('whsec_old')},v1={_v1('whsec_new')}"

    assert _verify(header, ["whsec_new"]) == NOW


def test_a_secret_no_longer_listed_does_not_verify():
    with pytest.raises(BadSignature):
        _verify(f"t={NOW},v1={_v1('whsec_old')}", ["whsec_new"])


def test_a_changed_body_does_not_verify():
    with pytest.raises(BadSignature):
        signature_verify(
            header=f"t={NOW},v1={_v1('whsec_new')}",
            body=BODY + b" ",
            secrets=["whsec_new"],
            tolerance=300,
            now=NOW,
        )


@pytest.mark.parametrize(
    "header",
    ["", "v1=abc", f"t={NOW}", "t=soon,v1=abc", "t=١٢,v1=abc", "garbage"],
)
def test_an_unreadable_header_is_a_bad_signature(header):
    with pytest.raises(BadSignature):
        _verify(header)


@pytest.mark.parametrize("offset", [-300, 300])
def test_a_signature_at_the_edge_of_the_tolerance_verifies(offset):
    assert _verify(f"t={NOW},v1={_v1('whsec_new')}", now=NOW + offset) == NOW


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_signature_past_the_tolerance_is_stale(offset):
    with pytest.raises(StaleSignature):
        _verify(f"t={NOW},v1={_v1('whsec_new')}", now=NOW + offset)
