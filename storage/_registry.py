"""Choosing a backend by URL scheme; backends register themselves (entry points too)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from storage._errors import StorageError, UnknownScheme
from storage._protocol import Storage
from storage.local import LocalStorage
from storage.memory import MemoryStorage

__all__ = ["ENTRY_POINT_GROUP", "from_url", "register_scheme"]

ENTRY_POINT_GROUP = "framehook.storage"
Factory = Callable[[str], Storage]


def _local(url: str) -> Storage:
    parts = urlsplit(url)
    return LocalStorage(parts.path if parts.scheme == "file" else url)


def _memory(url: str) -> Storage:
    return MemoryStorage(urlsplit(url).netloc)


_SCHEMES: dict[str, Factory] = {"": _local, "file": _local, "memory": _memory}


def register_scheme(scheme: str, factory: Factory) -> None:
    """Make ``from_url`` build ``factory(url)`` for ``scheme://`` URLs.

    Raises:
        StorageError: the scheme is taken (two backends for one scheme is a mistake).
    """
    if scheme in _SCHEMES:
        raise StorageError(f"a storage backend is already registered for {scheme!r}")
    _SCHEMES[scheme] = factory


def from_url(url: str) -> Storage:
    """The store for ``url``: a path or ``file://``, ``memory://``, or a registered scheme.

    Raises:
        UnknownScheme: no backend for the scheme (install the extra that provides it).
    """
    scheme = urlsplit(url).scheme
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme not in _SCHEMES:
        for point in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
            register_scheme(scheme, point.load())
    try:
        factory = _SCHEMES[scheme]
    except KeyError:
        raise UnknownScheme(
            f"no storage backend for {scheme}:// (is the package that provides it installed?)"
        ) from None
    return factory(url)
