"""Azure Blob Storage: ``az://container/prefix``.

Needs the ``azure`` extra (``pip install 'framehook[azure]'``, which brings ``obstore``).

Configuration comes from the environment (obstore reads it):

- ``AZURE_STORAGE_ACCOUNT_NAME`` (required, except for the emulator), with
  ``AZURE_STORAGE_ACCOUNT_KEY``, or ``AZURE_STORAGE_SAS_TOKEN``, or a service principal
  (``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ``AZURE_TENANT_ID``), or workload identity
  (``AZURE_FEDERATED_TOKEN_FILE``), or managed identity.
- ``AZURE_STORAGE_ENDPOINT``: another endpoint than ``https://ACCOUNT.blob.core.windows.net``
  (with ``AZURE_ALLOW_HTTP=true`` if it speaks plain http).
- ``AZURE_STORAGE_USE_EMULATOR=true``: Azurite, at ``AZURITE_BLOB_STORAGE_URL`` (default
  ``http://127.0.0.1:10000``) with its well-known ``devstoreaccount1`` account and key.

The URL takes no query parameters (obstore would ignore them): ``from_url`` refuses them.
obstore's other spellings are accepted too: ``azure://``, ``adl://``, ``abfs://`` and
``abfss://`` (also ``abfss://container@ACCOUNT.dfs.core.windows.net/prefix``); ``uri(key)``
keeps the spelling the URL used.
"""

from __future__ import annotations

from obstore.store import AzureStore

from storage._objectstore import ObjectStoreStorage, build_store

__all__ = ["SCHEMES", "AzureStorage"]

SCHEMES = frozenset({"az", "azure", "adl", "abfs", "abfss"})


class AzureStorage(ObjectStoreStorage):
    """Blobs in an Azure container under a prefix; ``uri(key)`` is ``az://container/prefix/key``."""

    @classmethod
    def from_url(cls, url: str) -> AzureStorage:
        """The store for ``az://container[/prefix]``, configured from the environment.

        Raises:
            StorageError: the URL is malformed or the environment's configuration is invalid
                (no account name, say).
        """
        store, base = build_store(url, "Azure", SCHEMES, AzureStore.from_url)
        return cls(store, backend="Azure", base_uri=base)
