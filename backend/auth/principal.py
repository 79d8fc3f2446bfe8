"""Who is calling: a user (bearer JWT) or an API key, within one tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from backend.audit.models import ActorType
from backend.settings import RateLimit


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: UUID  # the user's id, or the API key's id
    tenant_id: UUID
    permissions: frozenset[str]
    is_superadmin: bool = False
    session_id: UUID | None = None  # refresh-token family of a bearer token
    token_id: str | None = None  # `jti` of a bearer token
    token_expires_at: int | None = None
    # The effective per-principal limit: an API key's own limit, else the
    # tenant's plan tier (None: RATE_LIMIT_DEFAULT).
    rate_limit: RateLimit | None = None
    # A user's profile as read with the principal, in the same transaction
    # (the `/auth/me` row), so that `/auth/me` needs no query of its own.
    profile: Mapping[Any, Any] | None = field(default=None, compare=False, repr=False)
    # This request already counted in the API-wide rate limit while the
    # credentials were checked (same Redis round trip): the milliseconds to
    # wait when over the limit, else 0. None: not counted yet.
    api_wait_ms: int | None = field(default=None, compare=False, repr=False)

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER

    @property
    def actor_type(self) -> ActorType:
        return ActorType.USER if self.is_user else ActorType.API_KEY
