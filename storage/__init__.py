"""Asset storage: a small async Protocol and backends chosen by URL scheme."""

from storage._errors import (
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageRefused,
    UnknownScheme,
)
from storage._presign import Presigning, presigned_url
from storage._probe import PROBE_PREFIX, probe
from storage._protocol import Storage, StoredObject
from storage._registry import from_url, register_scheme
from storage.local import LocalStorage
from storage.memory import MemoryStorage

__all__ = [
    "PROBE_PREFIX",
    "InvalidKey",
    "LocalStorage",
    "MemoryStorage",
    "ObjectNotFound",
    "Presigning",
    "Storage",
    "StorageError",
    "StorageFull",
    "StorageRefused",
    "StoredObject",
    "UnknownScheme",
    "from_url",
    "presigned_url",
    "probe",
    "register_scheme",
]
