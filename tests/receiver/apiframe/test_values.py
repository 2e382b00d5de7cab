"""Decoded JSON made safe to keep: fingerprints, NUL replacement and depth, without recursion."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from receiver.apiframe.values import canonical_json, depth, fingerprint, without_nul

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


def deep(levels: int) -> Any:
    value: Any = "\0"
    for n in range(levels):
        value = {"k\0": value} if n % 2 else [value, n]
    return value


@given(_JSON)
def test_thecanonical_json_text_is_orjsons_sorted_text(value: Any) -> None:
    """Where orjson can write a value, the recursion-free canonical text is byte for byte the
    same: fingerprints already in the ledger keep their meaning."""
    assert canonical_json(value) == orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_a_value_too_deep_for_orjson_still_has_a_stable_fingerprint() -> None:
    """1,000 levels: a fingerprint, the same every time, different from a changed value's."""
    value = deep(1000)
    assert fingerprint(value) == fingerprint(deep(1000))
    assert fingerprint(value) != fingerprint(deep(999))
    shallow = {"b": [1, {"z": None}], "a": "x"}
    expected = hashlib.sha256(orjson.dumps(shallow, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert fingerprint(shallow) == expected


def test_nul_is_replaced_at_any_depth_and_order_is_kept() -> None:
    """Every NUL, in keys and values, 1,000 levels down, reads as U+FFFD; nothing else moves."""
    cleaned = without_nul(deep(1000))
    assert "\0" not in canonical_json(cleaned).decode()
    replaced = canonical_json(deep(1000)).replace(b"\\u0000", "\ufffd".encode())
    assert canonical_json(cleaned) == replaced
    assert list(without_nul({"b": 1, "a\0": 2})) == ["b", "a\ufffd"]


def test_depth_counts_levels_and_stops_past_the_limit() -> None:
    """Scalars are 0 deep; the walk stops one level past the limit however deep the value."""
    assert depth("x", 5) == 0
    assert depth({"a": [1, {"b": []}]}, 5) == 4
    assert depth(deep(1000), 64) == 65
    assert depth(deep(1000), 5000) == 1000
