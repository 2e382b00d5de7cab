"""Amazon S3 and S3-compatible stores (MinIO, Cloudflare R2, Ceph, ...): ``s3://bucket/prefix``.

Needs the ``s3`` extra (``pip install 'framehook[s3]'``, which brings ``obstore``).

Configuration comes from the environment, as AWS tooling reads it (obstore reads it):

- ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and optionally ``AWS_SESSION_TOKEN``; without
  them, web identity (``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ROLE_ARN``), the ECS container
  endpoint or the EC2 instance metadata service.
- ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``); ``us-east-1`` when unset.
- ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for an S3-compatible server, with
  ``AWS_ALLOW_HTTP=true`` if it speaks plain http, and ``AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true``
  if it wants ``bucket.host`` rather than ``host/bucket`` requests.

The URL takes no query parameters (obstore would ignore them): ``from_url`` refuses them.
``s3a://`` is accepted as a spelling of ``s3://``.
"""

from __future__ import annotations

from obstore.store import S3Store

from storage._objectstore import ObjectStoreStorage, build_store

__all__ = ["SCHEMES", "S3Storage"]

SCHEMES = frozenset({"s3", "s3a"})


class S3Storage(ObjectStoreStorage):
    """Objects in an S3 bucket under a prefix; ``uri(key)`` is ``s3://bucket/prefix/key``."""

    @classmethod
    def from_url(cls, url: str) -> S3Storage:
        """The store for ``s3://bucket[/prefix]``, configured from the environment.

        Raises:
            StorageError: the URL is malformed or the environment's configuration is invalid.
        """
        store, base = build_store(url, "S3", SCHEMES, S3Store.from_url)
        return cls(store, backend="S3", base_uri=base)
