"""Posting one signed event to the app's endpoints, and what each answered.

The app is the customer's own, so it may live on a private network: the request does not go
through the asset downloader's safe client (which refuses private addresses), but through a
plain client of its own that never follows a redirect (a 3xx is an answer, and a failure),
ignores proxies from the environment, and bounds everything: the connection, each read and
write, the whole exchange, and how much of the answer is read (a few KiB, for the error).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from handlers._signals import retry_after
from handlers.download._result import public_url

__all__ = ["ANSWER_BYTES", "EndpointAnswer", "deliver", "tls_context"]

ANSWER_BYTES = 2048
"""How much of an endpoint's answer is read and kept (for the task's error and the CLI)."""

USER_AGENT = "framehook-forward"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Answers that mean "not now": a Retry-After in them is honoured.
_TRANSIENT = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class EndpointAnswer:
    """What one endpoint did with one POST.

    Attributes:
        url: the endpoint, without its query string (it may carry a credential).
        status: the HTTP status, or ``None`` when no answer came (refused, timed out, cut).
        detail: the status line, or why no answer came, or where a redirect pointed.
        body: the start of the answer's body (at most ``ANSWER_BYTES``), as text.
        retry_after: seconds a 429/5xx answer asked to wait (``Retry-After``), if it did.
        seconds: how long the exchange took.
    """

    url: str
    status: int | None
    detail: str
    body: str = ""
    retry_after: float | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the app took the event (any 2xx)."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """Whether the app said to stop sending (410 Gone)."""
        return self.status == 410

    @property
    def transient(self) -> bool:
        """Whether it failed in a way that passes by itself: no answer, 408, 425, 429, 5xx."""
        status = self.status
        return status is None or status in _TRANSIENT or status >= 500

    def __str__(self) -> str:
        said = f": {self.body.strip()[:200]}" if self.body.strip() and not self.ok else ""
        return f"{self.url} {self.detail}{said}"


def tls_context() -> ssl.SSLContext:
    """The trust for https endpoints: certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    (an app on a private network may have a certificate from the company's own CA).

    Made once per handler: building one reads the CA bundle (milliseconds), too slow for each
    delivery.
    """
    return httpx.create_ssl_context(trust_env=True)


async def deliver(
    urls: Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_seconds: float,
    tls: ssl.SSLContext | None = None,
) -> list[EndpointAnswer]:
    """POST ``body`` with ``headers`` to every one of ``urls`` at once; their answers, in order.

    Never raises for what an endpoint does: a refusal, a timeout or a redirect is its answer.

    Args:
        timeout_seconds: the longest one endpoint may take, from connecting to the end of its
            answer.
        tls: trust for https endpoints (:func:`tls_context`; made here when ``None``).
    """
    limits = httpx.Limits(max_connections=max(1, len(urls)), max_keepalive_connections=0)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        verify=tls if tls is not None else tls_context(),
        limits=limits,
        # Identity: the start of an answer is read raw, for the error.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    ) as client:
        return list(
            await asyncio.gather(
                *(_post(client, url, body, headers, timeout_seconds) for url in urls)
            )
        )


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    limit: float,
) -> EndpointAnswer:
    shown = public_url(url)
    started = time.perf_counter()

    def failed(detail: str) -> EndpointAnswer:
        return EndpointAnswer(shown, None, detail, seconds=time.perf_counter() - started)

    try:
        # A slow drip of an answer stays within the bound too, not only each read.
        async with asyncio.timeout(limit):
            return await _exchange(client, url, shown, body, headers, started)
    except TimeoutError:
        return failed(f"no answer within {limit:g} s")
    except httpx.TimeoutException as exc:
        return failed(f"timed out ({type(exc).__name__}) after {limit:g} s")
    except httpx.HTTPError as exc:
        return failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


async def _exchange(
    client: httpx.AsyncClient,
    url: str,
    shown: str,
    body: bytes,
    headers: Mapping[str, str],
    started: float,
) -> EndpointAnswer:
    async with client.stream("POST", url, content=body, headers=dict(headers)) as response:
        said = await _read_some(response)
    status = response.status_code
    detail = f"{status} {response.reason_phrase}".strip()
    if status in _REDIRECTS:
        location = public_url(response.headers.get("location", "")) or "nowhere"
        detail += f" to {location}: framehook does not follow redirects (set the final URL)"
    wait = None
    if status in _TRANSIENT or status >= 500:
        wait = retry_after(response.headers.get("retry-after"))
    return EndpointAnswer(shown, status, detail, said, wait, seconds=time.perf_counter() - started)


async def _read_some(response: httpx.Response) -> str:
    """At most ``ANSWER_BYTES`` of the answer; the rest is never read (the connection is
    dropped, not reused)."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk[: ANSWER_BYTES - len(kept)]
        if len(kept) >= ANSWER_BYTES:
            break
    return kept.decode("utf-8", "replace")
