"""Signature verification as Apiframe signs: HMAC-SHA256 of the raw body, key = SHA-256(API key)."""

from __future__ import annotations

import pytest

from receiver import Derivation, SignatureRejected, Verifier, sign

VECTOR_KEY = "afk_0000000000000000000000000000000000000000"
VECTOR_BODY = b'{"jobId":"abc","status":"COMPLETED"}'
VECTOR_DIGEST = "sha256=58e6d7af820911d918b1b43ade255ec260002ca8b24ba46dd057a99d192c89f4"
VECTOR_HEX = "sha256=2cb660473e59908c969f761f7444eda6c9067d13d2d83a0057fb8fb5197c60af"


def test_sign_matches_reference_vectors() -> None:
    """sign() reproduces both published test vectors."""
    assert sign(VECTOR_BODY, VECTOR_KEY) == VECTOR_DIGEST
    assert sign(VECTOR_BODY, VECTOR_KEY, Derivation.HEX) == VECTOR_HEX


@pytest.mark.parametrize(
    ("header", "derivation"),
    [
        (VECTOR_DIGEST, Derivation.DIGEST),
        (VECTOR_HEX, Derivation.HEX),
        (VECTOR_DIGEST.removeprefix("sha256="), Derivation.DIGEST),
        (VECTOR_DIGEST.upper(), Derivation.DIGEST),
        ("  " + VECTOR_HEX + "\t", Derivation.HEX),
        ("SHA256=" + VECTOR_HEX.removeprefix("sha256=").upper(), Derivation.HEX),
    ],
)
def test_verify_accepts_every_documented_form(header: str, derivation: Derivation) -> None:
    """Prefix optional, any case, whitespace around; the derivation that matched is reported."""
    match = Verifier([VECTOR_KEY]).verify(header, VECTOR_BODY)
    assert match.derivation is derivation
    assert match.key_index == 0


def test_verify_reports_which_key_matched() -> None:
    """With several keys (rotation), the index of the matching one is reported, never the key."""
    verifier = Verifier(["afk_old", "afk_new", VECTOR_KEY])
    match = verifier.verify(VECTOR_HEX, VECTOR_BODY)
    assert (match.key_index, match.derivation) == (2, Derivation.HEX)
    assert VECTOR_KEY not in repr(match)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "signature_missing"),
        ("", "signature_missing"),
        ("   ", "signature_missing"),
        ("sha256=", "signature_malformed"),
        ("sha256=xyz", "signature_malformed"),
        ("sha1=" + "0" * 40, "signature_malformed"),
        ("sha256=" + "0" * 63, "signature_malformed"),
        ("sha256=" + "0" * 65, "signature_malformed"),
        ("sha256=" + "g" * 64, "signature_malformed"),
        ("sha256=" + "é" * 64, "signature_malformed"),
        ("sha256=" + "0" * 64, "signature_mismatch"),
        (VECTOR_DIGEST + "00", "signature_malformed"),
        ("v1," + "0" * 64, "signature_malformed"),
    ],
)
def test_verify_rejects_bad_headers_with_a_reason(header: str | None, reason: str) -> None:
    """Every malformed or wrong header raises SignatureRejected (401) with a precise reason."""
    with pytest.raises(SignatureRejected) as caught:
        Verifier([VECTOR_KEY]).verify(header, VECTOR_BODY)
    assert caught.value.reason == reason
    assert caught.value.status_code == 401


def test_verify_is_over_the_exact_bytes() -> None:
    """A re-serialised body (same JSON, other bytes) does not verify."""
    with pytest.raises(SignatureRejected):
        Verifier([VECTOR_KEY]).verify(VECTOR_DIGEST, b'{"jobId": "abc", "status": "COMPLETED"}')


def test_verifier_needs_a_key() -> None:
    """A verifier with no key is refused rather than accepting nothing silently."""
    with pytest.raises(ValueError, match="at least one"):
        Verifier([])
