"""Apiframe webhook signatures: HMAC-SHA256 of the raw body, keyed by SHA-256 of the API key.

Apiframe's SDK keys the HMAC with the raw 32-byte digest of the API key; the docs' wording can
also be read as the 64-character hex text of that digest, and at least one public receiver does
so. Both derivations need the secret key, so accepting both weakens nothing; which one matched
is recorded with every delivery.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from receiver.errors import SignatureRejected

__all__ = ["Derivation", "SignatureMatch", "Verifier", "sign"]

_PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdef")


class Derivation(StrEnum):
    """How the HMAC key was derived from the API key."""

    DIGEST = "digest"
    """SHA-256 of the API key, raw 32 bytes (Apiframe's SDK)."""
    HEX = "hex"
    """SHA-256 of the API key as 64 lowercase hex characters."""


@dataclass(frozen=True, slots=True)
class SignatureMatch:
    """Which configured key verified a body: its position, never the key itself."""

    key_index: int
    derivation: Derivation


def _hmac_key(api_key: str, derivation: Derivation) -> bytes:
    digest = hashlib.sha256(api_key.encode("utf-8")).digest()
    return digest if derivation is Derivation.DIGEST else digest.hex().encode("ascii")


def sign(body: bytes, api_key: str, derivation: Derivation = Derivation.DIGEST) -> str:
    """The ``X-Webhook-Signature`` value Apiframe would send for ``body``.

    Args:
        body: the exact bytes that will be sent.
        api_key: the Apiframe API key (``afk_...``).
        derivation: how the HMAC key is derived; Apiframe's SDK uses ``DIGEST``.

    Returns:
        ``sha256=`` followed by the lowercase hex HMAC.
    """
    mac = hmac.new(_hmac_key(api_key, derivation), body, hashlib.sha256).hexdigest()
    return _PREFIX + mac


def _parse_header(header: str | None) -> bytes:
    """The 32 signature bytes of a header value, or the precise reason it is unusable."""
    if header is None:
        raise SignatureRejected("signature_missing", "X-Webhook-Signature header is missing")
    value = header.strip().lower()
    if not value:
        raise SignatureRejected("signature_missing", "X-Webhook-Signature header is empty")
    if value.startswith(_PREFIX):
        value = value[len(_PREFIX) :].strip()
    elif "=" in value:
        raise SignatureRejected(
            "signature_malformed", "unsupported signature scheme; expected sha256=<hex>"
        )
    if len(value) != 64 or not _HEX_DIGITS.issuperset(value):
        raise SignatureRejected(
            "signature_malformed", "signature must be 64 hexadecimal characters (HMAC-SHA256)"
        )
    return bytes.fromhex(value)


class Verifier:
    """Checks signatures against every configured API key and both derivations.

    Args:
        api_keys: the API keys, in priority order; at least one.

    Raises:
        ValueError: no key given (a verifier that accepts nothing is a configuration error).
    """

    __slots__ = ("_candidates",)

    def __init__(self, api_keys: Sequence[str]) -> None:
        if not api_keys:
            raise ValueError("a Verifier needs at least one API key")
        # Most deliveries are signed with the first key the SDK way: try that first.
        self._candidates = tuple(
            (SignatureMatch(index, derivation), _hmac_key(key, derivation))
            for derivation in (Derivation.DIGEST, Derivation.HEX)
            for index, key in enumerate(api_keys)
        )

    def verify(self, header: str | None, body: bytes) -> SignatureMatch:
        """Verify ``header`` against the raw ``body`` bytes.

        Returns:
            The key and derivation that matched.

        Raises:
            SignatureRejected: ``signature_missing``, ``signature_malformed`` or
                ``signature_mismatch``.
        """
        expected = _parse_header(header)
        for match, key in self._candidates:
            if hmac.compare_digest(hmac.digest(key, body, "sha256"), expected):
                return match
        raise SignatureRejected("signature_mismatch", "signature matches none of the API keys")
