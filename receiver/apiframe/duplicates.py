"""Duplicate keys: a JSON object that names one key twice.

JSON leaves such an object's meaning open, and readers disagree: orjson (and ``json``) keep
the last value, others the first, and the raw body framehook stores keeps both. So a body
whose job id or status depends on which reader looks is not an event framehook acts on.

Every webhook passes this check, so its common case is C-level byte counting: outside strings
a colon only ever ends a key, so a body without duplicates has exactly as many colons as the
parsed value written back out compactly, and one with a duplicate has more (the repeated key's
colon, and whatever colons the value it lost held). Measured on a 3.7 kB completed webhook
(best of many runs, a busy 2-CPU machine): orjson.loads alone 6-7.5 µs, with this check
15.5-18.5 µs; followed instead by a second parse, ``json.loads(object_pairs_hook=...)``,
32-38 µs; by a regex counting the body's keys, 50-60 µs. Only when the counts differ (or the
body escapes a colon as ``\\u003a``, which the count cannot see) does a scan of the body's
tokens (about 50 µs there) find the key and say where it is.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from receiver.apiframe.values import dumps

__all__ = ["duplicate_key"]

# A whole JSON string (with the colon after it when it is a key), or a bracket. Scanning from
# the start, every match begins outside a string, so a quote inside one is never mistaken for
# the start of a token.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?|[{}\[\]]', re.DOTALL)
# A colon written as an escape (\u003a) is one the raw count misses; looking for the prefix
# is one search instead of two, and \u0030-\u003f (digits, punctuation) are rarely escaped.
_ESCAPED = b"\\u003"
_SHOWN = 80
"""Characters of a key or path a description shows (a key may be a megabyte long)."""


def duplicate_key(raw: bytes, data: Any) -> str | None:
    """Which key ``raw`` names twice in one object, and where, or ``None`` if none is.

    Args:
        raw: the JSON text, already read by orjson as ``data``.
        data: what orjson read from it.

    Returns:
        The first key found twice and where, as ``"status" twice in one object at the top
        level`` or ``"url" twice in one object in result.images[]``; ``None`` when every
        object's keys are distinct.
    """
    if _ESCAPED not in raw and raw.count(b":") == dumps(data).count(b":"):
        return None
    return _scan(raw)


class _Frame:
    """An open object (its keys so far) or array (``keys`` is ``None``)."""

    __slots__ = ("keys", "last", "where")

    def __init__(self, keys: set[str] | None, where: str) -> None:
        self.keys = keys
        self.where = where
        self.last = ""


def _scan(raw: bytes) -> str | None:
    # An explicit stack: the parser reads 1,024 levels, far deeper than Python recursion goes.
    stack: list[_Frame] = []
    for token in _TOKEN.finditer(raw):
        first = raw[token.start()]
        if first == ord('"'):
            keys = stack[-1].keys if stack and token.start(1) >= 0 else None
            if keys is None:
                continue  # a string value
            # Decoded: "a" and "\u0061" are the same key.
            key = orjson.loads(raw[token.start() : token.start(1)])
            if key in keys:
                return f"{_shown(key)} twice in one object {_place(stack[-1].where)}"
            keys.add(key)
            stack[-1].last = key
        elif first in b"{[":
            where = _inner(stack[-1]) if stack else ""
            stack.append(_Frame(set() if first == ord("{") else None, where))
        else:
            stack.pop()
    return None


def _inner(parent: _Frame) -> str:
    """Where a value opened inside ``parent`` is (``result.images[]``), its last
    ``2 * _SHOWN`` characters only: a thousand levels of long keys stay small."""
    if parent.keys is None:
        where = f"{parent.where}[]"
    else:
        name = parent.last[:_SHOWN]
        where = f"{parent.where}.{name}" if parent.where else name
    return where if len(where) <= 2 * _SHOWN else f"…{where[-2 * _SHOWN :]}"


def _shown(key: str) -> str:
    quoted = orjson.dumps(key[:_SHOWN]).decode()
    return quoted if len(key) <= _SHOWN else f'{quoted[:-1]}…"'


def _place(where: str) -> str:
    return f"in {where}" if where else "at the top level"
