"""Fingerprints: recognise that a secret changed without keeping the secret.

A fingerprint is HMAC-SHA256 over the secret's name and value, cut to 128
bits (enough to tell values apart, and less to work with should the table
leak). It is keyed, so a leaked fingerprint cannot be checked against
guesses without the key, and the name is part of the input, so two secrets
that share a value do not show it by sharing a fingerprint.

The key is ``SECRET_FINGERPRINT_KEY`` when set. Without it, the key is
derived from ``SECRET_KEY`` (an HMAC of a fixed label, never SECRET_KEY
itself), which has two costs that the code handles:

- whoever holds SECRET_KEY and the database can test guesses of a secret
  offline; they can already forge sessions, so this adds little;
- rotating SECRET_KEY re-keys every fingerprint. Each fingerprint is stored
  with the id of its key, so a fingerprint made with another key is never
  compared as if the value had changed: it is re-keyed without counting as
  a rotation. The key's own source (SECRET_KEY here) is the exception: a new
  key id means that very secret changed, which is recorded as its rotation.
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

FINGERPRINT_HEX = 32
_DERIVATION_LABEL = b"opsadmin.waivers.fingerprint-key.v1"


@dataclass(frozen=True)
class FingerprintKey:
    key: bytes
    key_id: str  # stored with each fingerprint; not secret
    source: str  # the secret the key comes from

    def fingerprint(self, name: str, value: str) -> str:
        message = name.encode() + b"\0" + value.encode()
        digest = hmac.new(self.key, message, hashlib.sha256).hexdigest()
        return digest[:FINGERPRINT_HEX]


def fingerprint_key() -> FingerprintKey:
    dedicated = getattr(settings, "SECRET_FINGERPRINT_KEY", "") or ""
    if dedicated:
        key, source = dedicated.encode(), "SECRET_FINGERPRINT_KEY"
    else:
        key = hmac.new(
            settings.SECRET_KEY.encode(), _DERIVATION_LABEL, hashlib.sha256
        ).digest()
        source = "SECRET_KEY"
    key_id = hmac.new(key, b"key-id", hashlib.sha256).hexdigest()[:12]
    return FingerprintKey(key=key, key_id=key_id, source=source)
