"""Bad input at volume: random headers and bodies at POST /webhooks/apiframe, on SQLite and
PostgreSQL.

``test_webhook.py::test_random_requests_never_get_a_500`` posts random bytes with a random or
valid signature and checks the status. These go further, each request checked against the
database before and after it:

- without a valid signature (missing, malformed, several, another key's, another body's, one
  digit off), whatever the other headers (random names and values, any ``X-Webhook-Event``,
  ``Content-Type`` and ``X-Request-Id``), with or without a ``Content-Length`` (a chunked
  body), whatever the body (random bytes, random JSON, Apiframe-like events with random
  fields, a real sample with bytes changed): 401, or 413 past the size limit; never a 5xx; and
  not one row written to any table;
- with a valid signature (any accepted spelling), the same headers and bodies: only what the
  README's "What happens to a webhook" lists (202, 200, 400, and 413 past the limit), never a
  5xx, and the delivery stored exactly when it was answered (a 400 as ``malformed``).

``tests/receiver/intake/test_any_values.py`` fuzzes the values instead: arbitrary JSON in every
field of a validly signed body, with the admin API checked after each.

Found here, and fixed: on PostgreSQL a signed event whose ``jobId``, ``model``, ``error`` or
``event`` held the JSON escape ``\\u0000`` was answered 503 ``intake_failed`` and never stored
(PostgreSQL text cannot hold NUL): a poison message its sender would retry for ever.
``test_a_signed_event_with_a_nul_character_is_stored_not_refused_503`` keeps it fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from receiver import Derivation, sign
from tests.support.database import TABLES
from tests.support.webhooks import API_KEY, OTHER_KEY, sample, sample_names, signed_headers

URL = "/webhooks/apiframe"
MAX_BODY = 4096  # the receiver's limit in these tests: some bodies are over it
# Headers the test client frames the request with: a random value would break the framing
# itself (which uvicorn refuses before any application code), not test the receiver.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})
_RANDOM_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,24}", fullmatch=True).filter(
    lambda name: name.lower() not in _FRAMING
)
# Header values as uvicorn passes them on: any bytes but CR, LF and NUL (h11 refuses those).
_RANDOM_VALUE = st.binary(max_size=120).map(
    lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"")
)
_EVENT_NAMES = st.sampled_from(["progress", "completed", "failed", "queued", "", "Completed"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)


@st.composite
def _event_like(draw: st.DrawFn) -> bytes:
    """A JSON object shaped like Apiframe's events, every field random or missing."""
    fields: dict[str, Any] = {
        "event": draw(_EVENT_NAMES | st.text(max_size=80) | _SCALARS),
        "jobId": draw(st.uuids().map(str) | st.text(max_size=220) | _SCALARS),
        "status": draw(st.sampled_from(["PROCESSING", "COMPLETED", "FAILED", "?"]) | _SCALARS),
        "progress": draw(st.integers(-5, 150) | _SCALARS),
        "result": draw(_JSON),
        "error": draw(st.text(max_size=60) | _SCALARS),
        "model": draw(st.text(max_size=40) | _SCALARS),
        "creditCost": draw(st.integers(-10, 10**6) | _SCALARS),
    }
    kept = draw(st.sets(st.sampled_from(sorted(fields))))
    body = {key: value for key, value in fields.items() if key in kept}
    body.update(draw(st.dictionaries(st.text(max_size=12), _JSON, max_size=3)))
    return json.dumps(body, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def _mutated_sample(draw: st.DrawFn) -> bytes:
    """A real Apiframe body with a few bytes changed, cut short, or padded."""
    body = bytearray(sample(draw(st.sampled_from(sample_names()))))
    for _ in range(draw(st.integers(0, 4))):
        body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del body[draw(st.integers(0, len(body))) :]
    if draw(st.booleans()):
        body += b" " * draw(st.integers(0, MAX_BODY))
    return bytes(body)


BODIES = st.one_of(
    st.binary(max_size=600),
    _JSON.map(lambda value: json.dumps(value).encode()),
    _event_like(),
    _mutated_sample(),
    st.binary(min_size=MAX_BODY - 16, max_size=MAX_BODY + 64),  # about the size limit
)


@st.composite
def _bad_signature(draw: st.DrawFn, body: bytes) -> list[str]:
    """``X-Webhook-Signature`` values (none, one or several) that must not verify ``body``."""
    other = body + b"x"
    good = sign(body, API_KEY)[len("sha256=") :]
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return []
    if kind == 1:
        return [draw(st.text(max_size=90).filter(lambda s: s.isprintable()))]
    if kind == 2:
        hexes = st.from_regex(r"(sha256=|SHA256=|sha1=|)?[0-9a-fA-F]{0,80}", fullmatch=True)
        return [draw(hexes.filter(lambda s: good not in s.lower()))]
    if kind == 3:  # another body's, either derivation
        return [sign(other, API_KEY, draw(st.sampled_from(list(Derivation))))]
    if kind == 4:  # a key this receiver does not have
        return [sign(body, OTHER_KEY, draw(st.sampled_from(list(Derivation))))]
    if kind == 5:  # one hex digit changed (not just its case: any case is accepted)
        at = draw(st.integers(0, 63))
        digit = draw(st.sampled_from([d for d in "0123456789abcdef" if d != good[at]]))
        return ["sha256=" + good[:at] + digit + good[at + 1 :]]
    if kind == 6:  # the right one twice: ambiguous, refused
        return [sign(body, API_KEY)] * 2
    return ["sha256=" + good[:-2]]  # cut short


@st.composite
def _good_signature(draw: st.DrawFn, body: bytes) -> str:
    """A valid ``X-Webhook-Signature`` for ``body`` in any spelling the README accepts."""
    mac = sign(body, API_KEY, draw(st.sampled_from(list(Derivation))))[len("sha256=") :]
    if draw(st.booleans()):
        mac = mac.upper()
    prefix = draw(st.sampled_from(["sha256=", "SHA256=", ""]))
    return draw(st.sampled_from(["", " "])) + prefix + mac


@st.composite
def _other_headers(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """Everything but the signature: event, content type, request id, random extras."""
    headers: list[tuple[str, bytes]] = []
    if draw(st.booleans()):
        event = draw(_EVENT_NAMES.map(str.encode) | _RANDOM_VALUE)
        headers.append(("X-Webhook-Event", event))
    content_type = draw(
        st.sampled_from(
            [
                None,
                b"application/json",
                b"application/json; charset=latin-1",
                b"text/plain",
                b"multipart/form-data; boundary=x",
                b"application/x-www-form-urlencoded",
            ]
        )
        | _RANDOM_VALUE
    )
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if draw(st.booleans()):
        headers.append(("X-Request-Id", draw(_RANDOM_VALUE)))
    headers += draw(st.lists(st.tuples(_RANDOM_NAME, _RANDOM_VALUE), max_size=6))
    return headers


def _chunks(body: bytes) -> Iterator[bytes]:
    # A generator: the client sends it chunked, without a Content-Length.
    for start in range(0, len(body), 512):
        yield body[start : start + 512]


def _counts(db: Engine) -> dict[str, int]:
    with db.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES
        }


def _post(
    client: TestClient,
    body: bytes,
    signatures: list[str],
    headers: list[tuple[str, bytes]],
    chunked: bool,
) -> Any:
    all_headers = [(name.encode(), value) for name, value in headers]
    all_headers += [(b"X-Webhook-Signature", s.encode()) for s in signatures]
    content = _chunks(body) if chunked else body
    return client.post(URL, content=content, headers=all_headers)


@pytest.fixture
def fuzz_client(make_client: Callable[..., TestClient]) -> TestClient:
    """The app with a small body limit, so that some random bodies are over it."""
    return make_client(max_body_bytes=MAX_BODY)


# A few hundred requests per test and database: marked slow (about 5 s each).
_FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.slow
@_FUZZ
@given(data=st.data(), body=BODIES, headers=_other_headers(), chunked=st.booleans())
def test_nothing_without_a_valid_signature_is_stored_or_answered_5xx(
    fuzz_client: TestClient,
    db: Engine,
    data: st.DataObject,
    body: bytes,
    headers: list[tuple[str, bytes]],
    chunked: bool,
) -> None:
    """Any headers and body, no valid signature: 401 (or 413 over the limit) with a JSON
    reason, never a 5xx, and no table gains a row."""
    signatures = data.draw(_bad_signature(body), label="signatures")
    before = _counts(db)
    response = _post(fuzz_client, body, signatures, headers, chunked)
    assert response.status_code in (401, 413), response.text
    assert response.json()["ok"] is False
    assert response.json()["reason"]
    assert _counts(db) == before


@pytest.mark.slow
@_FUZZ
@given(data=st.data(), body=BODIES, headers=_other_headers(), chunked=st.booleans())
def test_signed_random_input_gets_a_documented_answer_and_is_stored_when_answered(
    fuzz_client: TestClient,
    db: Engine,
    data: st.DataObject,
    body: bytes,
    headers: list[tuple[str, bytes]],
    chunked: bool,
) -> None:
    """Any headers and body, validly signed: 202, 200 or 400 (413 over the limit), never a
    5xx; every answered request is one more delivery (a 400 a ``malformed`` one), a 413 none."""
    signature = data.draw(_good_signature(body), label="signature")
    before = _counts(db)
    response = _post(fuzz_client, body, [signature], headers, chunked)
    assert response.status_code in (200, 202, 400, 413), response.text
    answer = response.json()
    after = _counts(db)
    if response.status_code == 413:
        assert after == before
        return
    assert after["deliveries"] == before["deliveries"] + 1
    if response.status_code == 400:
        assert answer["reason"] in ("not_json", "not_an_object", "invalid_event"), answer
        with db.connect() as connection:
            outcome = connection.execute(
                text("SELECT outcome FROM deliveries WHERE id = (SELECT max(id) FROM deliveries)")
            ).scalar_one()
        assert outcome == "malformed"
    else:
        assert answer["ok"] is True


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"progress","jobId":"job\\u0000one","status":"PROCESSING","progress":5}',
        b'{"event":"progress","jobId":"job-2","progress":5,"model":"mid\\u0000journey"}',
        b'{"event":"failed","jobId":"job-3","status":"FAILED","error":"bad\\u0000"}',
        b'{"event":"queued\\u0000","jobId":"job-4"}',
    ],
    ids=["jobId", "model", "error", "event"],
)
def test_a_signed_event_with_a_nul_character_is_stored_not_refused_503(
    fuzz_client: TestClient,
    db: Engine,
    body: bytes,
) -> None:
    """A signed body with ``\\u0000`` (valid JSON) in a field the receiver stores as text is
    stored and answered (2xx, or 400 as malformed), like any other signed body: a 503 would
    make Apiframe retry it for ever, and it would never be stored."""
    before = _counts(db)
    response = fuzz_client.post(URL, content=body, headers=signed_headers(body))
    assert response.status_code in (200, 202, 400), response.text
    assert _counts(db)["deliveries"] == before["deliveries"] + 1
    # The raw body keeps the NUL; what was read from it has U+FFFD in its place.
    with db.connect() as connection:
        raw, job_id = connection.execute(
            text("SELECT body, job_id FROM deliveries ORDER BY id DESC LIMIT 1")
        ).one()
    assert bytes(raw) == body
    assert job_id is None or "\0" not in job_id
