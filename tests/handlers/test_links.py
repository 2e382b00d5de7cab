"""``context.links`` in ``handlers.testing``: fake links by default, any linker on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers import Asset, AssetLink, AssetLinker, HandlerContext, JobEvent, NoLinks
from handlers.testing import FakeLinks, run, sample_event

ASSET = Asset(
    job_id="job-1",
    position=1,
    kind="image",
    source_url="https://cdn.apiframe.ai/1.png",
    key="job-1/image 1.png",
    storage_uri="memory://testing/job-1/image 1.png",
    size=3,
    content_type="image/png",
    sha256="0" * 64,
    stored_at=datetime.now(UTC),
)


class LinksOne:
    """A handler that asks for a link to ``ASSET``."""

    name = "links-one"
    events = frozenset({"completed"})

    def __init__(self) -> None:
        self.links: list[AssetLink | None] = []

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        self.links.append(await ctx.links.link(ASSET))


def test_run_gives_fake_links_by_default() -> None:
    """Under ``run`` a handler gets a link per asset, on a host that never resolves, valid
    7 days; ``links=NoLinks()`` shows it what happens when framehook can make none."""
    handler = LinksOne()
    context = run(handler, sample_event("completed-midjourney"))
    assert isinstance(context.links, FakeLinks)
    assert isinstance(context.links, AssetLinker)
    (link,) = handler.links
    assert link is not None
    assert link.url == "https://assets.framehook.invalid/job-1/image%201.png"
    assert link.expires_at - datetime.now(UTC) > timedelta(days=6, hours=23)
    run(handler, sample_event("completed-midjourney"), links=NoLinks())
    assert handler.links[-1] is None
