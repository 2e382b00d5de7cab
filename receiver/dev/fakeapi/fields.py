"""Checks of single JSON values, as Apiframe's request schemas state them.

Each check answers ``None`` for a good value or the message Apiframe's validation would give.
``bool`` is never a number here: JSON keeps ``true`` and ``1`` apart, and so does the schema.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

__all__ = ["Choice", "Field", "Integer", "Number", "Text", "Uri", "Uuid"]


class Field(Protocol):
    """A rule for one value of a request body."""

    def check(self, value: object) -> str | None:
        """The problem with ``value``, or ``None``."""
        ...


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Text:
    """A string of ``low`` to ``high`` characters."""

    high: int
    low: int = 0

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return "Expected string"
        if not self.low <= len(value) <= self.high:
            return f"String must contain {self.low} to {self.high} character(s)"
        return None


@dataclass(frozen=True, slots=True)
class Uri:
    """An absolute URL; ``web`` asks for http(s) (the fake must be able to reach it)."""

    web: bool = False

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return "Expected string"
        try:
            parts = urlsplit(value)
        except ValueError:
            return "Invalid url"
        if not parts.scheme or not parts.netloc:
            return "Invalid url"
        if self.web and parts.scheme not in ("http", "https"):
            return "Invalid url: must be http(s)"
        return None


@dataclass(frozen=True, slots=True)
class Uuid:
    """A UUID in its text form."""

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return "Expected string"
        try:
            uuid.UUID(value)
        except ValueError:
            return "Invalid uuid"
        return None


@dataclass(frozen=True, slots=True)
class Choice:
    """One of ``values`` (strings, or numbers where the schema lists numbers)."""

    values: tuple[str | float, ...]

    def check(self, value: object) -> str | None:
        numeric = all(not isinstance(v, str) for v in self.values)
        if (_is_number(value) if numeric else isinstance(value, str)) and value in self.values:
            return None
        return "Expected one of " + ", ".join(map(str, self.values))


@dataclass(frozen=True, slots=True)
class Integer:
    """A whole number from ``low`` to ``high``."""

    low: int
    high: int

    def check(self, value: object) -> str | None:
        # A huge int stays an int (no float conversion, which would overflow).
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            return "Expected integer"
        assert isinstance(value, int | float)
        if not self.low <= value <= self.high:
            return f"Number must be from {self.low} to {self.high}"
        return None


@dataclass(frozen=True, slots=True)
class Number:
    """A finite number, above ``above`` (exclusive) or from ``low``, up to ``high``."""

    low: float | None = None
    high: float | None = None
    above: float | None = None

    def check(self, value: object) -> str | None:
        if not _is_number(value):
            return "Expected number"
        assert isinstance(value, int | float)
        if self.above is not None and not value > self.above:
            return f"Number must be greater than {self.above}"
        if self.low is not None and value < self.low:
            return f"Number must be at least {self.low}"
        if self.high is not None and value > self.high:
            return f"Number must be at most {self.high}"
        return None
