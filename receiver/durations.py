"""Ages, one grammar for the CLI and the admin API: a whole number and a unit, ``90s``, ``30m``,
``2h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["AGE_EXAMPLES", "AGE_PATTERN", "parse_age"]

AGE_PATTERN = r"^[0-9]{1,9}[smhd]$"
"""The grammar as a regular expression (the admin API's OpenAPI description shows it)."""
AGE_EXAMPLES = "90s, 30m, 2h or 7d"

_AGE = re.compile(AGE_PATTERN)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta:
    """``7d`` → seven days; case and surrounding blanks do not matter.

    Raises:
        ValueError: ``text`` is not an age in this grammar.
    """
    value = text.strip().lower()
    if _AGE.match(value) is None:
        raise ValueError(f"{text!r}: expected a duration such as {AGE_EXAMPLES}")
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])
