"""Citizens' ID numbers and phone numbers, encrypted field by field (Decree 13/2023/NĐ-CP).

A sealed value is ``pd1.<key id>.<base64url(nonce | AES-GCM ciphertext)>``, the field's name
bound in as associated data (a sealed phone cannot be passed off as an ID number). Intake seals
them as a dossier arrives; they stay sealed in every table and every event; only a service
that must use one in clear opens it: notify to send a message, intake to tell the national
portal. Where a search needs them (notify's per-recipient rate limit), a keyed hash
(HMAC-SHA256) stands in for the value.

Keys: ``LGSP_PD_KEYS`` = ``kid:base64key,kid:base64key`` (32-byte keys; the first seals, all
open, so a key is rotated by putting a new one first and keeping the old ones until no sealed
value uses them), ``LGSP_PD_LOOKUP_KEY`` for the hash. In the local profile the local stack's
public keys stand in (shared/settings.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from typing_extensions import TypeIs

PREFIX = "pd1."
SEALED_MAX = 200  # the longest sealed value of a short field (a phone, an ID number)


class PersonalDataError(ValueError):
    """A sealed value that cannot be opened: unknown key, or altered."""


def is_sealed(value: str | None) -> TypeIs[str]:
    return value is not None and value.startswith(PREFIX)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PersonalDataKeys:
    keys: dict[str, bytes]  # key id -> 32-byte key; the first seals
    lookup_key: bytes

    @classmethod
    def parse(cls, keys: str, lookup_key: str) -> "PersonalDataKeys":
        parsed = {}
        for item in filter(None, (k.strip() for k in keys.split(","))):
            kid, _, key = item.partition(":")
            raw = _unb64(key)
            if not kid.isalnum() or len(raw) != 32:
                raise ValueError("LGSP_PD_KEYS: each key is 'id:base64' with an alphanumeric id and 32 bytes")
            parsed[kid] = raw
        if not parsed:
            raise ValueError("LGSP_PD_KEYS names no key")
        return cls(parsed, _unb64(lookup_key) if lookup_key else b"")

    @property
    def current(self) -> str:
        return next(iter(self.keys))

    def seal(self, value: str | None, field: str) -> str | None:
        """The value sealed under the current key; None and already sealed values as they are."""
        if value is None or value == "" or is_sealed(value):
            return value
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, value.encode("utf-8"), field.encode())
        return f"{PREFIX}{self.current}.{_b64(nonce + sealed)}"

    def open(self, value: str | None, field: str) -> str | None:
        """The clear value; a value stored before encryption (not sealed) is returned as it is."""
        if not is_sealed(value):
            return value
        try:
            _, kid, blob = value.split(".", 2)
            raw = _unb64(blob)
            return AESGCM(self.keys[kid]).decrypt(raw[:12], raw[12:], field.encode()).decode("utf-8")
        except KeyError:
            raise PersonalDataError(f"sealed with key {value.split('.')[1]!r}, which is not configured") from None
        except Exception:  # noqa: BLE001 - InvalidTag, bad base64: the value was altered
            raise PersonalDataError(f"a sealed {field} could not be opened (altered, or another key)") from None

    def lookup_hash(self, value: str | None) -> str | None:
        """A keyed hash for equality lookups, without the value."""
        if not value:
            return None
        return hmac.new(self.lookup_key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def local_keys() -> tuple[str, str]:
    """The local stack's public keys (LGSP_PROFILE=local only), as LGSP_PD_KEYS and LGSP_PD_LOOKUP_KEY."""
    key = _b64(hashlib.sha256(b"lgsp-local-personal-data-key-1").digest())
    lookup = _b64(hashlib.sha256(b"lgsp-local-personal-data-lookup").digest())
    return f"local1:{key}", lookup
