"""The fake's provider assets: ``POST /v2/assets/create`` and ``GET /v2/assets/{assetId}``.

Apiframe forwards the URL to a video provider that wants inputs registered first (Kie,
Seedance) and answers the provider's object verbatim, whose shape it does not document. The
fake's object is a plausible one: the id, the URL, the type, a status and when it was made.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from receiver.dev.fakeapi.bodies import iso_time

__all__ = ["ASSET_TYPES", "Asset", "AssetStore", "asset_request"]

ASSET_TYPES = ("image", "video", "audio")


@dataclass(frozen=True, slots=True)
class Asset:
    """One registered asset."""

    id: str
    url: str
    type: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def resource(self) -> dict[str, Any]:
        """The provider's object, as ``GET /v2/assets/{assetId}`` passes it through."""
        return {
            "id": self.id,
            "url": self.url,
            "type": self.type,
            "status": "Active",
            "createdAt": iso_time(self.created_at),
        }


def asset_request(body: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The request's ``url`` and ``type``, or what is wrong with them, keyed by JSON path."""
    if not isinstance(body, Mapping):
        return {}, {"": ["Expected object"]}
    problems: dict[str, list[str]] = {}
    url, kind = body.get("url"), body.get("type")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        problems["url"] = ["Invalid url"]
    if kind not in ASSET_TYPES:
        problems["type"] = [f"Expected one of {', '.join(ASSET_TYPES)}"]
    if problems:
        return {}, problems
    return {"url": str(url), "type": str(kind)}, {}


class AssetStore:
    """The registered assets, by id."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, Asset] = {}

    def add(self, url: str, kind: str) -> Asset:
        """Register ``url`` as an asset of ``kind``."""
        asset = Asset(f"asset-{uuid.uuid4().hex}", url, kind)
        self._by_id[asset.id] = asset
        return asset

    def get(self, asset_id: str) -> Asset | None:
        """The asset with ``asset_id``, if any."""
        return self._by_id.get(asset_id)
