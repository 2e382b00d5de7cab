"""A property: whatever values a validly signed body carries, it is stored and answered 200,
202 or 400, and the admin API still answers, on SQLite and PostgreSQL.

Every field (``event``, ``jobId``, ``type``, ``status``, ``progress``, ``result``, ``error``,
``model``, ``creditCost``, ``completedAt``, a LoRA's ``id``, ``name`` and ``triggerWord``, and
extra ones) gets arbitrary JSON: nesting as
deep as the parser reads and deeper, numbers huge, tiny, past a double's range, odd dates and
offsets, NULs, lone surrogates, strings of hundreds of kilobytes, wrong types, keys given twice.
``tests/system/test_fuzz.py`` fuzzes the request (headers, signatures, bytes); this, the values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from receiver.settings import Settings
from tests.support.webhooks import signed_headers

URL = "/webhooks/apiframe"
TOKEN = "any-values-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = Settings.model_fields["max_body_bytes"].default  # the receiver's default body limit
ADMIN = ["/api/jobs", "/api/deliveries", "/api/tasks", "/api/credits", "/api/credits?by=day"]
JOBS = ["a1b2c3d4-0000-4000-8000-000000000001", "a1b2c3d4-0000-4000-8000-000000000002"]

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324, -0.0, 2**63, 2**64, -(2**63) - 1])
    | st.text(max_size=30)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_OFFSETS = st.timedeltas(timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59))
_DATES = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)),
    _OFFSETS,
) | st.sampled_from(
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2026-02-30T10:00:00Z",
        "2026-03-15T10:00:32",
        "2026-03-15",
        "soon",
        "",
    ]
)


def _nested(levels: int, leaf: str) -> str:
    return (
        "".join('{"k":' if n % 2 else "[" for n in range(levels))
        + leaf
        + "".join("}" if n % 2 else "]" for n in reversed(range(levels)))
    )


# JSON text of one value: what json.dumps writes, or text it cannot write (depth, raw tokens).
_VALUE_TEXT = st.one_of(
    st.tuples(_JSON, st.booleans()).map(lambda v: json.dumps(v[0], ensure_ascii=v[1])),
    _DATES.map(json.dumps),
    st.integers(1, 1023).map(lambda levels: _nested(levels, "0")),
    st.sampled_from(["1E+2", "-0", "123456789012345678901234567890", "1e-400"]),
    st.sampled_from(['"\\u0000"', '"a\\u0000b"', '"\\ud83d\\ude00"']),
    st.sampled_from([65, 201, 70_000, 300_000]).map(lambda n: json.dumps("é\0" * (n // 2))),
)
# Text the parser refuses (the whole body is then a 400): at most one per body, or most bodies
# would be refused and the values behind them never reach the intake.
_REFUSED = st.sampled_from(["1e400", "-1e400", '"\\ud800"', '"\\udfff x"', "NaN"]) | st.integers(
    1025, 1100
).map(lambda levels: _nested(levels, "0"))
_FIELDS = {
    "event": st.sampled_from(["progress", "completed", "failed", "cancelled", "queued"]),
    "jobId": st.sampled_from(JOBS),
    "type": st.sampled_from(["completed", "job.failed", "progress", "image"]),
    "status": st.sampled_from(["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]),
    "progress": st.integers(-5, 150),
    "result": st.just({"images": ["https://cdn2.apiframe.ai/a.png"]}),
    "error": st.text(max_size=20),
    "model": st.sampled_from(["midjourney", "kling-2.6", "suno"]),
    "creditCost": st.integers(0, 50),
    "completedAt": st.just("2026-03-15T10:00:32.000Z"),
    # A body without a jobId may be a LoRA training's (receiver.apiframe.loras).
    "id": st.sampled_from(["lora_1", "lora_2"]),
    "name": st.text(max_size=20),
    "triggerWord": st.text(max_size=10),
}


@dataclass(frozen=True)
class Body:
    """A drawn body and its jobId's JSON text (if it has one), shown short when it fails."""

    raw: bytes
    job_id: str | None

    def __repr__(self) -> str:
        return f"Body({len(self.raw)} bytes: {self.raw[:300]!r}...)"


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    """A JSON object (as bytes) with each known field absent, plausible, or any JSON at all,
    some extra fields, and sometimes a key given twice."""
    pairs: list[tuple[str, str]] = []
    for name, plausible in _FIELDS.items():
        choice = draw(st.integers(0, 3))  # absent, plausible (twice as likely), or anything
        if choice in (1, 2):
            pairs.append((name, json.dumps(draw(plausible))))
        elif choice == 3:
            pairs.append((name, draw(_VALUE_TEXT)))
    pairs += draw(st.lists(st.tuples(st.text(max_size=10), _VALUE_TEXT), max_size=3))
    if draw(st.integers(0, 5)) == 0:
        pairs.append((draw(st.sampled_from([*_FIELDS, "extra"])), draw(_REFUSED)))
    if pairs and draw(st.booleans()):
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(st.sampled_from(pairs))[0], "null"))
    ordered = draw(st.permutations(pairs))
    raw = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in ordered) + "}"
    job_ids = [v for k, v in ordered if k == "jobId"]  # the last one given counts
    return Body(raw.encode("utf-8", "surrogatepass"), job_ids[-1] if job_ids else None)


def _count(db: Engine) -> int:
    with db.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM deliveries")).scalar_one())


def _last_body(db: Engine) -> bytes:
    with db.connect() as connection:
        body = connection.execute(
            text("SELECT body FROM deliveries ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    return bytes(body)


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The receiver with the admin API on."""
    return make_client(admin_token=TOKEN)


# About 7 s per database: slow. Bounded by max_examples; no deadline (PostgreSQL commits vary).
@pytest.mark.slow
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=bodies())
def test_any_values_are_stored_answered_and_leave_the_admin_api_answering(
    api: TestClient, db: Engine, case: Body
) -> None:
    """Any values in a signed body: 200, 202 or 400, one more delivery holding the body byte
    for byte, and every admin GET route still answers without a 5xx."""
    raw, job_id = case.raw, case.job_id
    assume(len(raw) <= LIMIT)
    before = _count(db)
    response = api.post(URL, content=raw, headers=signed_headers(raw))
    assert response.status_code in (200, 202, 400), response.text
    assert _count(db) == before + 1
    assert _last_body(db) == raw
    routes = list(ADMIN)
    # The job's own page, when the body named one (a job id is at most 200 characters).
    if job_id is not None and job_id.startswith('"') and len(job_id) < 400:
        name = json.loads(job_id)
        if isinstance(name, str) and name.strip() and name.isprintable():
            routes.append(f"/api/jobs/{quote(name.strip(), safe='')}")
    for route in routes:
        answer = api.get(route, headers=AUTH)
        assert answer.status_code < 500, (route, answer.text)
