"""The fake's caller: the one user, team and API key behind ``GET /v2/me`` and every resource.

Apiframe scopes jobs and LoRAs to a user and a team. The fake has one of each, derived from its
API key (so two fakes with the same key agree, and a restart keeps the ids); the user owns the
team, which is what lets it ask ``GET /v2/jobs?scope=team``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["STARTING_CREDITS", "Account", "account_for"]

STARTING_CREDITS = 10_000
"""The team's balance before any job; each job's ``creditCost`` comes off it."""
_NAMESPACE = uuid.UUID("6f1c0e52-3b55-4d7e-9a51-0c1f2e8b7a90")


@dataclass(frozen=True, slots=True)
class Account:
    """Who the fake's API key belongs to."""

    user_id: str
    team_id: str
    key_id: str
    key_prefix: str
    email: str = "developer@framehook.test"
    role: str = "OWNER"
    team_name: str = "framehook (fake)"
    plan: str = "pro"
    key_name: str = "framehook fake key"

    @property
    def is_admin(self) -> bool:
        """Whether the user may see the whole team's jobs (``scope=team``)."""
        return self.role in {"OWNER", "ADMIN"}

    def me(self, *, by_api_key: bool, spent: Iterable[int | None] = ()) -> dict[str, Any]:
        """The ``Me`` resource; ``apiKey`` is null unless the caller used ``X-API-Key``."""
        credits = max(0, STARTING_CREDITS - sum(cost or 0 for cost in spent))
        return {
            "user": {"id": self.user_id, "email": self.email, "role": self.role},
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "credits": credits,
                "plan": self.plan,
                "customerId": None,
            },
            "apiKey": (
                {"id": self.key_id, "name": self.key_name, "prefix": self.key_prefix}
                if by_api_key
                else None
            ),
        }


def account_for(api_key: str) -> Account:
    """The account the fake ascribes to ``api_key`` (stable: the ids hash the key)."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    return Account(
        user_id=str(uuid.uuid5(_NAMESPACE, f"user:{digest}")),
        team_id=str(uuid.uuid5(_NAMESPACE, f"team:{digest}")),
        key_id=str(uuid.uuid5(_NAMESPACE, f"key:{digest}")),
        # Apiframe shows a key's first characters, never the secret itself.
        key_prefix=api_key[:8],
    )
