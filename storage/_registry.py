"""Choosing a backend by URL scheme; backends register themselves (entry points too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def _extra(extra: str, scheme: str) -> Iterator[None]:
    # The cloud backends import obstore, an optional dependency: say which extra brings it.
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "obstore":
            raise
        raise UnknownScheme(
            f"{scheme}:// storage needs obstore: pip install 'framehook[{extra}]'"
        ) from None


def _s3(url: str) -> Storage:
    with _extra("s3", urlsplit(url).scheme):
        from storage.s3 import S3Storage
    return S3Storage.from_url(url)


def _gcs(url: str) -> Storage:
    with _extra("gcs", urlsplit(url).scheme):
        from storage.gcs import GCSStorage
    return GCSStorage.from_url(url)


def _azure(url: str) -> Storage:
    with _extra("azure", urlsplit(url).scheme):
        from storage.azure import AzureStorage
    return AzureStorage.from_url(url)


# Kept in step with the SCHEMES of storage.s3, storage.gcs and storage.azure, which cannot be
# imported here without obstore.
_SCHEMES: dict[str, Factory] = {
    "": _local,
    "file": _local,
    "memory": _memory,
    "s3": _s3,
    "s3a": _s3,
    "gs": _gcs,
    "az": _azure,
    "azure": _azure,
    "adl": _azure,
    "abfs": _azure,
    "abfss": _azure,
}


def register_scheme(scheme: str, factory: Factory) -> None:
    """Make ``from_url`` build ``factory(url)`` for ``scheme://`` URLs.

    Raises:
        StorageError: the scheme is taken (two backends for one scheme is a mistake).
    """
    if scheme in _SCHEMES:
        raise StorageError(f"a storage backend is already registered for {scheme!r}")
    _SCHEMES[scheme] = factory


def from_url(url: str) -> Storage:
    """The store for ``url``: a path, ``file://``, ``memory://``, ``s3://``, ``gs://``, ``az://``,
    or a registered scheme.

    Raises:
        UnknownScheme: no backend for the scheme, or its extra is not installed (the message
            says which).
        StorageError: the backend refuses the URL or its configuration.
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
