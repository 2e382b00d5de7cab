"""The fake's routes beside jobs and LoRAs: the caller, the model catalogue, uploads and assets.

- ``GET /v2/me``: the ``Me`` resource (``receiver.dev.fakeapi.account``).
- ``GET /v2/models?modality=``: the public catalogue, no key needed
  (``receiver.dev.fakeapi.modelcatalog``).
- ``POST /v2/uploads``: a multipart ``file``, answered ``201`` with an ``Upload`` whose URL the
  fake's CDN serves at ``/cdn/uploads/<id>.<ext>`` for an hour (``receiver.dev.fakeapi.uploads``).
- ``POST /v2/assets/create`` and ``GET /v2/assets/{assetId}``: provider assets
  (``receiver.dev.fakeapi.assets``).

Validation failures answer Apiframe's ``ValidationError``: ``details`` maps a JSON path to its
messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.dev.fakeapi.account import account_for
from receiver.dev.fakeapi.assets import AssetStore, asset_request
from receiver.dev.fakeapi.lifecycle import FakeApiframe
from receiver.dev.fakeapi.modelcatalog import MODALITIES, catalogue
from receiver.dev.fakeapi.uploads import MAX_BYTES, UploadStore, sniff, uploaded_file

__all__ = ["operation_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
_LARGEST = max(MAX_BYTES.values())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _invalid(details: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse({"error": "Validation failed", "details": details}, status_code=400)


def operation_routes(fake: FakeApiframe, api: Callable[[Endpoint], Endpoint]) -> list[Route]:
    """The routes, those needing a key wrapped by ``api`` (the key check, the 429/503 dice)."""
    account = account_for(fake.api_key)
    uploads, assets = UploadStore(), AssetStore()

    async def me(request: Request) -> Response:
        by_api_key = getattr(request.state, "by_api_key", True)
        spent = (job.credit_cost for job in fake.jobs)
        return JSONResponse(account.me(by_api_key=by_api_key, spent=spent))

    async def models(request: Request) -> Response:
        modality = request.query_params.get("modality")  # "" is not a modality either: 400
        if modality is not None and modality not in MODALITIES:
            return _invalid({"modality": [f"Expected one of {', '.join(MODALITIES)}"]})
        return JSONResponse({"models": catalogue(modality)})

    async def upload(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        # A body this large holds no file Apiframe would take: refuse before reading it.
        if declared.isdigit() and int(declared) > _LARGEST + 1024 * 1024:
            return _invalid({"file": ["File too large"]})
        data = uploaded_file(await request.body(), request.headers.get("content-type", ""))
        if not data:
            return _invalid({"file": ["A multipart/form-data 'file' is required"]})
        sniffed = sniff(data)
        if sniffed is None:
            return _invalid({"file": ["Unsupported file type"]})
        if len(data) > MAX_BYTES[sniffed[0]]:
            return _invalid({"file": [f"File too large (max {MAX_BYTES[sniffed[0]]} bytes)"]})
        base = fake.base_url or str(request.base_url)
        return JSONResponse(uploads.add(data, sniffed, base).resource(), status_code=201)

    async def upload_file(request: Request) -> Response:
        found = uploads.served(request.path_params["name"])
        if found is None:
            return _error(404, "Not found")
        return Response(found.data, media_type=found.content_type)

    async def create_asset(request: Request) -> Response:
        try:
            body: Any = await request.json()
        except ValueError:
            return _invalid({"": ["The body is not valid JSON"]})
        fields, problems = asset_request(body)
        if problems:
            return _invalid(problems)
        asset = assets.add(fields["url"], fields["type"])
        return JSONResponse({"assetId": asset.id}, status_code=201)

    async def get_asset(request: Request) -> Response:
        asset = assets.get(request.path_params["asset_id"])
        if asset is None:
            return _error(404, "Asset not found")
        return JSONResponse(asset.resource())

    return [
        Route("/v2/me", api(me), methods=["GET"]),
        Route("/v2/models", models, methods=["GET"]),
        Route("/v2/uploads", api(upload), methods=["POST"]),
        Route("/v2/assets/create", api(create_asset), methods=["POST"]),
        Route("/v2/assets/{asset_id}", api(get_asset), methods=["GET"]),
        Route("/cdn/uploads/{name}", upload_file, methods=["GET"]),
    ]
