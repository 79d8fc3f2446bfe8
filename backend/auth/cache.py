"""Principals kept in process memory, so that a request with a known
credential needs no PostgreSQL query to know who is calling.

An entry is trusted only while its tenant's *auth epoch* in Redis
(`backend.auth.epochs`) still has the value it had before the entry's rows
were read: every change that affects a principal of the tenant (roles,
permissions, users, sessions, API keys, the tenant itself) sets a new epoch
once it has committed. The epoch is read in the same Redis round trip as
the rate limit and the token denylist, so a cache hit costs nothing extra;
when Redis cannot answer, nothing here is trusted and the database is asked.

Entries also expire after `PRINCIPAL_CACHE_SECONDS` whatever the epoch
says, which bounds how long a lost epoch update (Redis failing right after a
commit) could go unnoticed; 0 turns the cache off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from starlette.requests import HTTPConnection

from backend.auth.principal import Principal

MAX_ENTRIES = 10_000

CacheKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CachedPrincipal:
    """A principal as its rows said at `version` of its tenant's epoch (None:
    read without knowing the epoch; only its tenant is worth knowing then)."""

    version: str | None
    tenant_id: UUID
    principal: Principal
    tokens_valid_after: float | None = None  # users: tokens issued before are void
    key_hash: str | None = None  # API keys: the stored keyed hash
    expires_at: datetime | None = None  # API keys
    stored_at: float = 0.0


class PrincipalCache:
    """Bounded (least recently stored entries go first) and per process."""

    def __init__(self, max_age_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.max_age = max_age_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, CachedPrincipal] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_age > 0

    def get(self, key: CacheKey) -> CachedPrincipal | None:
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.stored_at > self.max_age:
            del self._entries[key]
            return None
        return entry

    def put(self, key: CacheKey, entry: CachedPrincipal) -> None:
        if not self.enabled:
            return
        self._entries.pop(key, None)
        self._entries[key] = replace(entry, stored_at=time.monotonic())
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def user_key(tenant_id: UUID, user_id: UUID) -> CacheKey:
    return ("user", str(tenant_id), str(user_id))


def api_key_key(prefix: str) -> CacheKey:
    return ("key", prefix)


def get_cache(connection: HTTPConnection) -> PrincipalCache | None:
    cache: PrincipalCache | None = getattr(connection.app.state, "principal_cache", None)
    return cache if cache is not None and cache.enabled else None
