"""Storage errors.

Tree::

    StorageError          the backend failed (``errno`` set when a filesystem call did)
    ├── InvalidKey        the key is empty, absolute, or escapes the store
    ├── ObjectNotFound    nothing is stored under the key
    ├── StorageFull       no space left (ENOSPC, EDQUOT): may pass once space is freed
    ├── StorageRefused    the store may not be written (EROFS, EACCES, EPERM): its
    │                     configuration must change, retrying cannot help
    └── UnknownScheme     no backend is registered for the URL's scheme
"""

from __future__ import annotations

import errno

__all__ = [
    "InvalidKey",
    "ObjectNotFound",
    "StorageError",
    "StorageFull",
    "StorageRefused",
    "UnknownScheme",
    "os_failure",
]


class StorageError(Exception):
    """Base of every storage error.

    Attributes:
        errno: the OS error number (``errno.ENOSPC``) when a filesystem call failed, else
            ``None``; the ``OSError`` itself is the ``__cause__``.
    """

    errno: int | None = None


class InvalidKey(StorageError):
    """The key is empty, absolute, or would escape the store's root."""


class ObjectNotFound(StorageError):
    """Nothing is stored under the key."""


class StorageFull(StorageError):
    """The store has no room left (disk full, quota reached); freeing space fixes it."""


class StorageRefused(StorageError):
    """The store may not be written or read there (read-only, permission denied): retrying
    cannot help until its configuration changes."""


class UnknownScheme(StorageError):
    """No backend is registered for the URL's scheme."""


# errno → (the error it is, what happened, what to change). What to change is said for the
# service (FRAMEHOOK_STORAGE_URL): plugins build stores the same way (``from_url``).
_MEANINGS: dict[int, tuple[type[StorageError], str, str]] = {
    errno.ENOSPC: (StorageFull, "no space left on the device", "free space there"),
    errno.EDQUOT: (StorageFull, "disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: (StorageRefused, "the filesystem is read-only", "mount it read-write"),
    errno.EACCES: (StorageRefused, "permission denied", "give framehook's user access to it"),
    errno.EPERM: (StorageRefused, "operation not permitted", "give framehook's user access to it"),
}


def os_failure(exc: OSError, store: str, action: str) -> StorageError:
    """The storage error an ``OSError`` from the filesystem means, with a one-line message
    naming the errno and what to change. Raise it ``from exc``.

    Args:
        exc: what the filesystem call raised.
        store: the store, as its messages name it (``local storage /srv/assets``).
        action: what failed (``writing job-1/image-1.png``).
    """
    code = exc.errno
    name = errno.errorcode.get(code, "") if code is not None else ""
    known = _MEANINGS.get(code) if code is not None else None
    if code == errno.ENAMETOOLONG:
        error: StorageError = InvalidKey(f"{store}: {action}: the name is too long (ENAMETOOLONG)")
    elif known is not None:
        kind, what, change = known
        error = kind(
            f"{store}: {action}: {what} ({name}): {change}, "
            "or set FRAMEHOOK_STORAGE_URL to another place"
        )
    else:
        # The OSError's class is often the clearest name (NotADirectoryError, IsADirectoryError).
        reason = f"{type(exc).__name__}: {exc.strerror or exc}"
        error = StorageError(f"{store}: {action}: {reason}" + (f" ({name})" if name else ""))
    error.errno = code
    return error
