"""Apiframe's official OpenAPI spec, read from ``../shared/reference`` beside the repository
(Apiframe's file: never copied into it). Under CI a missing spec fails the test that wants it;
locally it skips, saying where it looked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

__all__ = ["SPEC", "load_spec"]

SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "apiframe-openapi.json"


def load_spec(*, module_level: bool = False) -> dict[str, Any]:
    """The spec as a dict, or a failure (CI) or skip (locally) when it is not there.

    Args:
        module_level: called while a test module is imported (schemathesis builds its tests
            from the spec then): skip the whole module rather than one test.
    """
    if not SPEC.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"Apiframe's spec is not at {SPEC}", pytrace=False)
        pytest.skip(f"Apiframe's spec is not at {SPEC}", allow_module_level=module_level)
    document: dict[str, Any] = orjson.loads(SPEC.read_bytes())
    return document
