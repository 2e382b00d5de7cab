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

__all__ = ["Derivation", "SignatureMatch", "Verifier", "parse_signature", "sign"]

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


# Above this, hash with an HMAC object: OpenSSL then releases the GIL while it hashes (the
# receiver verifies large bodies on a thread); below, the one-shot digest is the fastest.
_GIL_FREE_BYTES = 8 * 1024


def _hmac(key: bytes, body: bytes) -> bytes:
    if len(body) > _GIL_FREE_BYTES:
        return hmac.new(key, body, hashlib.sha256).digest()
    return hmac.digest(key, body, "sha256")


def parse_signature(header: str | None) -> bytes:
    """The 32 signature bytes of an ``X-Webhook-Signature`` value.

    Cheap, and needs no body: the receiver calls it before reading one, so a request that
    cannot be signed costs neither the body's bytes nor an HMAC.

    Raises:
        SignatureRejected: ``signature_missing`` or ``signature_malformed``.
    """
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
        return self.match(parse_signature(header), body)

    @property
    def candidates(self) -> int:
        """How many HMACs a body that matches nothing costs (keys times derivations)."""
        return len(self._candidates)

    def match(self, expected: bytes, body: bytes) -> SignatureMatch:
        """The key and derivation whose HMAC of ``body`` is ``expected`` (from
        :func:`parse_signature`).

        Raises:
            SignatureRejected: ``signature_mismatch``.
        """
        for match, key in self._candidates:
            if hmac.compare_digest(_hmac(key, body), expected):
                return match
        raise SignatureRejected("signature_mismatch", "signature matches none of the API keys")
