"""What a check says: a status, a detail and a hint."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Check", "Status"]


class Status(StrEnum):
    """How a check went: ``fail`` makes ``framehook doctor`` exit 1."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One check's result.

    Attributes:
        name: what was checked (``database``, ``handler download``, ...).
        status: ok, warn or fail.
        detail: what was found; never a secret.
        hint: how to fix a warning or a failure (``None`` when there is nothing to do).
    """

    name: str
    status: Status
    detail: str
    hint: str | None = None
