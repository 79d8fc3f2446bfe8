"""Per-tenant auth epochs: the Redis values that say whether a cached
principal (`backend.auth.cache`) is still good.

A transaction that changes a row a principal is made of — a user, a role, a
role assignment, an API key, a tenant — gives the tenant a new epoch once it
has committed, before the response is sent. The rows are noticed when the
session flushes (`after_flush`), so no service has to remember it; bulk
statements, which the session does not track, call `invalidate_principals`.

Caches read the epoch *before* they read the rows, so an entry filled while
a change commits carries the old epoch and is dropped at its next use.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backend.api_keys.models import ApiKey
from backend.auth.cache import PrincipalCache
from backend.kit.db import Database, ScopedSession, after_commit
from backend.roles.models import Role, UserRole
from backend.tenants.models import Tenant
from backend.users.models import User

logger = logging.getLogger("dossier.auth")

_EPOCHS = "auth_epochs"


def epoch_key(prefix: str, tenant_id: UUID | str) -> str:
    return f"{prefix}:auth-epoch:{tenant_id}"


class Epochs:
    """Where this process sets new epochs, and its own cache."""

    def __init__(self, redis: Redis, prefix: str, cache: PrincipalCache) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cache = cache

    async def bump(self, tenant_ids: set[UUID]) -> None:
        value = f"{time.time_ns()}.{uuid.uuid4().hex[:8]}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for tenant_id in tenant_ids:
                    pipe.set(epoch_key(self.prefix, tenant_id), value)
                await pipe.execute()
        except (RedisError, OSError):
            # Other processes keep their entries until they expire
            # (PRINCIPAL_CACHE_SECONDS); this one forgets its own.
            self.cache.clear()
            logger.warning("auth epoch could not be updated; cached principals may lag")


def share_epochs(database: Database, epochs: Epochs) -> None:
    """Every session of `database` sets new epochs through `epochs` (kept in
    the sessions' `info`, so that each app's sessions use their own)."""
    database.share(_EPOCHS, epochs)


class _Bump:
    """The after-commit action setting new epochs for the tenants it gathered."""

    def __init__(self, epochs: Epochs) -> None:
        self.epochs = epochs
        self.tenant_ids: set[UUID] = set()

    async def __call__(self) -> None:
        await self.epochs.bump(self.tenant_ids)


def invalidate_principals(session: AsyncSession | Session, tenant_id: UUID) -> None:
    """The tenant's cached principals are void once this transaction commits.
    Sessions made outside an app (the CLI, which only creates principals; the
    worker, which changes none) have no epochs to set."""
    epochs: Epochs | None = session.info.get(_EPOCHS)
    if epochs is None:
        return
    actions = session.info.get("after_commit") or []
    bump = next((action for action in actions if isinstance(action, _Bump)), None)
    if bump is None:
        bump = _Bump(epochs)
        after_commit(session, bump)
    bump.tenant_ids.add(tenant_id)


def _tenant_of(instance: Any) -> UUID | None:
    if isinstance(instance, Tenant):
        return instance.id
    if isinstance(instance, (User, Role, UserRole, ApiKey)):
        tenant_id: UUID | None = instance.tenant_id
        return tenant_id
    return None


# Columns no principal is made of: a change to these alone (a login stamps
# `last_login_at`) leaves the tenant's cached principals good.
_BOOKKEEPING = frozenset({"last_login_at", "updated_at"})


def _changes_principal(row: Any) -> bool:
    state = inspect(row)
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
    return bool(changed - _BOOKKEEPING)


@event.listens_for(ScopedSession, "after_flush")
def _notice_changes(session: Session, _context: Any) -> None:
    changed = [*session.new, *session.deleted]
    changed += [row for row in session.dirty if _changes_principal(row)]
    for row in changed:
        tenant_id = _tenant_of(row)
        if tenant_id is not None:
            invalidate_principals(session, tenant_id)
