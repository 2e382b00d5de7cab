"""Plain SQL for SQLite and PostgreSQL in the driver's own terms: formats and placeholders.

The hot paths (the intake, task claims and outcomes) run multi-row statements on the DBAPI
cursor of a SQLAlchemy connection: Core's per-row parameter processing costs more than the
database spends on these statements. Values are written in exactly the formats SQLAlchemy's
own types use for the columns (``receiver.db.models``), so everything else reads the rows through
the models unchanged; tests read rows written here back through the ORM to keep them in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from itertools import chain
from typing import Any

import orjson

__all__ = ["DialectSql"]


class DialectSql:
    """Value formats and placeholders for one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    # -- value formats: the ones SQLAlchemy's types use for these columns -------------------

    def ts(self, value: datetime | None) -> Any:
        """A timestamp as stored: naive UTC text on SQLite, aware on PostgreSQL."""
        if value is None:
            return None
        value = value.astimezone(UTC)
        if self.sqlite:
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return value

    def json(self, value: Any) -> Any:
        """A JSON column value: SQL NULL for ``None``, else JSON text (cast on PostgreSQL)."""
        return None if value is None else orjson.dumps(value).decode()

    def flag(self, value: bool) -> Any:
        """A boolean: 0/1 on SQLite."""
        return int(value) if self.sqlite else value

    def _read_ts(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def _read_json(self, value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str | bytes) and self.sqlite else value

    # -- placeholders -------------------------------------------------------------------------

    def _param(self, name: str) -> str:
        return f":{name}" if self.sqlite else f"%({name})s"

    def _json_param(self, name: str) -> str:
        return self._param(name) if self.sqlite else f"CAST({self._param(name)} AS JSON)"

    @cache  # noqa: B019 - a handful of instances per process, one per dialect
    def _values(self, columns: tuple[str, ...], rows: int, json_column: str | None = None) -> str:
        def one(n: int) -> str:
            params = (
                self._json_param(f"{c}_{n}") if c == json_column else self._param(f"{c}_{n}")
                for c in columns
            )
            return "(" + ", ".join(params) + ")"

        return ", ".join(one(n) for n in range(rows))

    @staticmethod
    def _flatten(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        return {
            f"{c}_{n}": v for n, row in enumerate(rows) for c, v in zip(columns, row, strict=True)
        }

    def _in(self, prefix: str, count: int) -> str:
        return ", ".join(self._param(f"{prefix}_{n}") for n in range(count))

    # Positional placeholders, for the intake's multi-row statements: with names, SQLite looks
    # each one up by name when binding, and the parameters are a dict with a key built per
    # value (together ~4 % of a delivery's CPU at saturation). A statement uses one style only.

    @cache  # noqa: B019 - a handful of instances per process, one per dialect
    def _marks(self, count: int) -> str:
        """``count`` positional placeholders, comma-separated."""
        return ", ".join(["?" if self.sqlite else "%s"] * count)

    @cache  # noqa: B019 - as above
    def _rows(self, width: int, rows: int) -> str:
        """``rows`` parenthesised rows of ``width`` positional placeholders (``VALUES`` list)."""
        return ", ".join([f"({self._marks(width)})"] * rows)

    @staticmethod
    def _row_params(rows: Iterable[Sequence[Any]]) -> list[Any]:
        """The rows' values in order, for :meth:`_rows`."""
        return list(chain.from_iterable(rows))
