"""Key validation shared by every backend: relative, normalised, never escaping the root."""

from __future__ import annotations

from pathlib import PurePosixPath

from storage._errors import InvalidKey

__all__ = ["clean_key"]


def clean_key(key: str) -> str:
    """The key as stored, or ``InvalidKey``: no absolute paths, ``..``, backslashes or NULs."""
    if not key or "\x00" in key or "\\" in key:
        raise InvalidKey(f"invalid storage key {key!r}")
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in ("..", ".") for part in path.parts) or not path.parts:
        raise InvalidKey(f"storage key {key!r} must be a relative path inside the store")
    return str(path)
