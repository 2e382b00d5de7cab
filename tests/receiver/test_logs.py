"""Logs never carry secrets or signed URL query strings."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.logs import redact


@pytest.mark.parametrize(
    "key", ["signature", "api_key", "apikey", "admin_token", "Authorization", "password"]
)
def test_secret_looking_keys_are_redacted(key: str) -> None:
    """A value under a secret-looking key never reaches the rendered line."""
    event: dict[str, Any] = {"event": "x", key: "afk_live_secret"}
    assert redact(None, "info", event)[key] == "[redacted]"


def test_url_query_strings_are_redacted_but_the_url_kept() -> None:
    """Signed CDN links keep scheme, host and path; their query string is hidden."""
    event: dict[str, Any] = {
        "event": "download",
        "source": "https://cdn2.apiframe.ai/images/a.png?X-Amz-Signature=abc&Expires=1",
        "note": "see https://x.test/p?token=t and https://y.test/q",
        "plain": "no url here?",
    }
    out = redact(None, "info", event)
    assert out["source"] == "https://cdn2.apiframe.ai/images/a.png?[redacted]"
    assert out["note"] == "see https://x.test/p?[redacted] and https://y.test/q"
    assert out["plain"] == "no url here?"
