"""Decoded JSON from a signed body, made safe to keep: fingerprints, NUL-free text, depth.

The body's parser (orjson) accepts objects and arrays nested up to 1,024 levels, but orjson's
own writer, and anything in Python that recurses, stops at a few hundred. Everything here walks
with an explicit stack instead, so no value the parser accepted can make the intake fail (a 5xx
on a signed body would be retried by Apiframe for ever).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["MAX_STORED_DEPTH", "canonical_json", "depth", "dumps", "fingerprint", "without_nul"]

MAX_STORED_DEPTH = 64
"""The deepest JSON value framehook stores in a column of its own (a job's ``result``): no
result Apiframe documents is deeper than 4, and the admin API, which nests it a few levels
further when it answers, must still be able to write it."""

_Container = dict[str, Any] | list[Any]


def fingerprint(value: Any) -> str:
    """SHA-256 hex of ``value`` as canonical JSON (sorted keys, compact).

    Values orjson can write get orjson's bytes (the fingerprints already in the ledger stay
    valid); deeper ones the same canonical text, written by :func:`canonical_json`.
    """
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: nested deeper than orjson writes
        text = canonical_json(value)
    return hashlib.sha256(text).hexdigest()


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON: orjson's, or for a value nested deeper than orjson writes,
    its canonical text (keys sorted)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return canonical_json(value)


def canonical_json(value: Any) -> bytes:
    """``value`` (decoded JSON: objects with text keys, arrays, scalars) as compact JSON with
    sorted keys, at any depth: byte for byte what ``orjson.dumps(value, option=OPT_SORT_KEYS)``
    writes when it can write it at all."""
    out: list[bytes] = []
    # Work items: a value to write, or literal bytes (a separator or a closing bracket).
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, dict):
            out.append(b"{")
            stack.append(b"}")
            keys = sorted(item)
            # Pushed last-first, so that they come off the stack in writing order.
            for n in range(len(keys) - 1, -1, -1):
                stack.append(item[keys[n]])
                stack.append(orjson.dumps(keys[n]) + b":")
                if n:
                    stack.append(b",")
        elif isinstance(item, list):
            out.append(b"[")
            stack.append(b"]")
            for n in range(len(item) - 1, -1, -1):
                stack.append(item[n])
                if n:
                    stack.append(b",")
        else:
            out.append(orjson.dumps(item))
    return b"".join(out)


def without_nul(value: Any) -> Any:
    """``value`` with every NUL in its strings (keys too) replaced by U+FFFD.

    PostgreSQL's text columns cannot hold NUL at all: an insert of such a job id, model or
    error would fail. Only ever called when the raw body holds the escape ``\\u0000``.
    """
    if isinstance(value, str):
        return value.replace("\0", "\ufffd")
    if not isinstance(value, dict | list):
        return value
    root: _Container = {} if isinstance(value, dict) else []
    stack: list[tuple[_Container, _Container]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, str):
                item = item.replace("\0", "\ufffd")
            elif isinstance(item, dict | list):
                copy: _Container = {} if isinstance(item, dict) else []
                stack.append((item, copy))
                item = copy
            if isinstance(target, dict):
                target[str(key).replace("\0", "\ufffd")] = item
            else:
                target.append(item)
    return root


def depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests arrays and objects (a scalar is 0), counted up to ``limit + 1``:
    the walk stops as soon as the value is known to be deeper than ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest
