"""Duplicate keys: a body naming one key twice in one object, at any depth, is found and named;
keys that only look alike (in other objects, inside strings) are not."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.apiframe.duplicates import duplicate_key
from tests.support.webhooks import sample, sample_names


def found(raw: bytes) -> str | None:
    return duplicate_key(raw, orjson.loads(raw))


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            b'{"jobId":"a","event":"completed","jobId":"b"}',
            '"jobId" twice in one object at the top',
        ),
        (b'{"status":"COMPLETED","status":"FAILED"}', '"status" twice in one object at the top'),
        (b'{"status" : "A" ,\n  "status" : "B"}', '"status" twice'),
        (b'{"result":{"images":["x"],"images":[]}}', '"images" twice in one object in result'),
        (b'{"r":{"t":[{"u":1},{"a":1,"a":2}]}}', '"a" twice in one object in r.t[]'),
        (b'{"jobId":"a","\\u006aobId":"b"}', '"jobId" twice'),
        (b'{"a":{"x":"1:2"},"a":{}}', '"a" twice'),
        (b'{"k":"\\u003a","k":1}', '"k" twice'),
    ],
    ids=["job-id", "status", "spaced", "nested", "in-array", "escaped-key", "lost-colons", "esc"],
)
def test_a_key_named_twice_in_one_object_is_found_and_named(raw: bytes, named: str) -> None:
    """The first key an object repeats is named with where it is, however the two are
    written (an escape spelling the same key counts)."""
    assert (found(raw) or "").startswith(named)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":{"k":1},"b":{"k":1}}',
        b'{"a":[{"k":1},{"k":2}]}',
        b'{"s":"{\\"a\\":1,\\"a\\":2}","t":"a\\":b"}',
        b'{"url":"https://x/a:b","at":"10:00:00","\\u003a":"\\u003a"}',
        b'{"a":1,"A":2,"a ":3}',
        b"{}",
    ],
    ids=["siblings", "array-items", "json-in-a-string", "colons", "near-names", "empty"],
)
def test_keys_that_only_look_alike_are_not_duplicates(raw: bytes) -> None:
    """The same key in two objects, key-like text in strings, colons in values (escaped too)
    and keys differing by case or a space are not duplicates."""
    assert found(raw) is None


@pytest.mark.parametrize("name", sample_names())
def test_no_shipped_sample_has_a_duplicate(name: str) -> None:
    """The bodies Apiframe sends, as shipped, pass."""
    assert found(sample(name)) is None


def test_a_duplicate_a_thousand_levels_deep_is_found_and_the_place_stays_short() -> None:
    """Nesting as deep as the parser reads does not overflow; the place shown keeps its tail."""
    raw = b'{"d":' + b'{"k":' * 1000 + b'{"z":1,"z":2}' + b"}" * 1000 + b"}"
    named = found(raw)
    assert named is not None
    assert named.startswith('"z" twice in one object in …')
    assert named.endswith(".k.k")
    assert len(named) < 250


def test_a_long_key_is_shown_cut() -> None:
    """A megabyte-long repeated key is named by its first characters."""
    key = b"k" * 1_000_000
    named = found(b'{"' + key + b'":0,"' + key + b'":1}')
    assert named is not None
    assert len(named) < 200


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate")
    return dict(pairs)


def _has_duplicate(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_pairs_hook)
    except ValueError:
        return True
    return False


# Keys as written: some spell the same key two ways (an escape), some hold ":" or a quote.
_KEYS = st.sampled_from(
    [
        '"a"',
        '"\\u0061"',
        '"b"',
        '"status"',
        '"a:b"',
        '"a\\u003ab"',
        '"q\\""',
        '"\\\\"',
        '":"',
        '"é"',
    ]
)
_SCALARS = st.sampled_from(
    [
        "null",
        "1",
        '""',
        '":"',
        '"\\":"',
        '"a:b"',
        '"{\\"a\\":1,\\"a\\":2}"',
        '"\\\\u003a"',
        '"\\u003a"',
    ]
)


def _object_text(pairs: list[tuple[str, str]]) -> str:
    # Some pairs spaced around the colon, as a pretty-printer writes them.
    return "{" + ",".join(f"{k}{' : ' if len(v) % 2 else ':'}{v}" for k, v in pairs) + "}"


_JSON_TEXT = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(_KEYS, inner), max_size=4).map(_object_text),
    ),
    max_leaves=20,
)


@given(_JSON_TEXT)
def test_agrees_with_a_reader_that_sees_every_pair(text: str) -> None:
    """On any JSON text (keys repeated or not, colons and quotes in strings), a duplicate is
    reported exactly when ``json.loads`` with ``object_pairs_hook`` sees one."""
    raw = text.encode()
    assert (found(raw) is not None) == _has_duplicate(raw)
