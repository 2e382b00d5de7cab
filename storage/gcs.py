"""Google Cloud Storage: ``gs://bucket/prefix``.

Needs the ``gcs`` extra (``pip install 'framehook[gcs]'``, which brings ``obstore``).

Configuration comes from the environment (obstore reads it):

- ``GOOGLE_SERVICE_ACCOUNT`` (or ``GOOGLE_SERVICE_ACCOUNT_PATH``): a service account JSON file;
  or ``GOOGLE_SERVICE_ACCOUNT_KEY``: the JSON itself; or ``GOOGLE_APPLICATION_CREDENTIALS``:
  application default credentials; without any, the GCE/GKE metadata server.
- ``GOOGLE_BEARER_TOKEN``: a fixed OAuth token instead (not refreshed).
- ``GOOGLE_BASE_URL``: another endpoint than ``https://storage.googleapis.com`` (obstore
  speaks the XML API there, multipart uploads included).

The URL takes no query parameters (obstore would ignore them): ``from_url`` refuses them.
"""

from __future__ import annotations

from obstore.store import GCSStore

from storage._objectstore import ObjectStoreStorage, build_store

__all__ = ["SCHEMES", "GCSStorage"]

SCHEMES = frozenset({"gs"})


class GCSStorage(ObjectStoreStorage):
    """Objects in a GCS bucket under a prefix; ``uri(key)`` is ``gs://bucket/prefix/key``."""

    @classmethod
    def from_url(cls, url: str) -> GCSStorage:
        """The store for ``gs://bucket[/prefix]``, configured from the environment.

        Raises:
            StorageError: the URL is malformed or the environment's configuration is invalid.
        """
        store, base = build_store(url, "GCS", SCHEMES, GCSStore.from_url)
        return cls(store, backend="GCS", base_uri=base)
