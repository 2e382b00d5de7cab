"""A framehook handler: on ``completed``, store ``<job id>/manifest.json`` listing the job's
result URLs, model and cost — a small, complete example of the plugin API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from handlers import HandlerContext, JobEvent, PermanentFailure

__all__ = ["ManifestHandler", "result_urls"]


def result_urls(result: Any) -> list[str]:
    """Every URL in an Apiframe result: a string, or an object of URLs, lists and tracks."""
    if isinstance(result, str):
        return [result] if result.startswith("http") else []
    if isinstance(result, list):
        return [url for item in result for url in result_urls(item)]
    if isinstance(result, dict):
        return [url for value in result.values() for url in result_urls(value)]
    return []


class ManifestHandler:
    """Writes a manifest for every completed job (idempotent: same job, same manifest)."""

    name = "manifest"
    events = frozenset({"completed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        urls = result_urls(event.job.result)
        if not urls:
            raise PermanentFailure("the completed job has no result URLs")
        manifest = {
            "jobId": event.job_id,
            "model": event.job.model,
            "creditCost": event.job.credit_cost,
            "urls": urls,
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        stored = await ctx.storage.put(
            f"{event.job_id}/manifest.json", chunks(), "application/json"
        )
        ctx.log.info("manifest stored", uri=stored.uri, urls=len(urls))
