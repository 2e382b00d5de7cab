"""Storage errors.

Tree::

    StorageError
    ├── InvalidKey        the key is empty, absolute, or escapes the store
    ├── ObjectNotFound    nothing is stored under the key
    └── UnknownScheme     no backend is registered for the URL's scheme
"""

from __future__ import annotations

__all__ = ["InvalidKey", "ObjectNotFound", "StorageError", "UnknownScheme"]


class StorageError(Exception):
    """Base of every storage error."""


class InvalidKey(StorageError):
    """The key is empty, absolute, or would escape the store's root."""


class ObjectNotFound(StorageError):
    """Nothing is stored under the key."""


class UnknownScheme(StorageError):
    """No backend is registered for the URL's scheme."""
