"""Platform administration: tenants' users, stats and purging.

Other domains plug their numbers and their purging in here, so admin imports
none of them:

* `register_stats_provider("documents" | "storage_bytes", fn)` with
  `fn(session) -> int`, and `register_stats_provider("jobs", fn)` with
  `fn(session) -> dict[status, int]`; they run in the admin's system scope and
  count across tenants. Unprovided numbers are 0.
* `register_purger(name, fn)` with `fn(session, cutoff, tenant_ids) -> int`:
  hard-delete that domain's rows soft-deleted before `cutoff` AND every row of
  the tenants in `tenant_ids` (about to be purged; their rows would otherwise
  go by cascade, leaving e.g. blobs behind). Purgers run before the built-in
  users, roles and tenants purge, in the same transaction; blob deletion
  belongs after commit (`backend.kit.db.after_commit`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.admin.repository import PlatformRoleRepository, PlatformUserRepository
from backend.api_keys.service import api_key_service
from backend.audit.service import Actor, audit_service
from backend.kit.db import current_system_scope
from backend.kit.pagination import ListQuery, PageResult
from backend.roles.service import role_service
from backend.settings import Settings
from backend.tenants.service import tenant_service
from backend.users.models import User

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
STAT_NAMES = ("documents", "storage_bytes", "jobs")

StatsProvider = Callable[[AsyncSession], Awaitable[Any]]
Purger = Callable[[AsyncSession, datetime, list[UUID]], Awaitable[int]]

_stats_providers: dict[str, StatsProvider] = {}
_purgers: dict[str, Purger] = {}


def register_stats_provider(name: str, provider: StatsProvider) -> None:
    if name not in STAT_NAMES:
        raise ValueError(f"unknown stat {name!r}; known: {', '.join(STAT_NAMES)}")
    _stats_providers[name] = provider


def register_purger(name: str, purger: Purger) -> None:
    if name in ("tenants", "users", "roles"):
        raise ValueError(f"{name!r} is purged by the admin domain itself")
    _purgers[name] = purger


@dataclass(frozen=True, slots=True)
class PurgeResult:
    cutoff: datetime
    purged: dict[str, int]


def _require_system_scope() -> None:
    if current_system_scope() is None:
        raise RuntimeError("platform administration needs a system scope")


class AdminService:
    async def list_tenant_users(
        self, session: AsyncSession, tenant_id: UUID, query: ListQuery, *, include_deleted: bool
    ) -> tuple[PageResult[User], dict[UUID, list[str]]]:
        _require_system_scope()
        await tenant_service.get_tenant(session, tenant_id, include_deleted=True)
        repository = PlatformUserRepository(session)
        stmt = repository.of_tenant(tenant_id, include_deleted=include_deleted)
        result = await repository.paginate(stmt, query)
        roles = await role_service.role_names_of(
            session, tenant_id, [user.id for user in result.items]
        )
        return result, roles

    async def stats(self, session: AsyncSession) -> dict[str, Any]:
        _require_system_scope()
        stats: dict[str, Any] = {
            "tenants": await tenant_service.count_live(session),
            "users": await PlatformUserRepository(session).count_live(),
            "api_keys": await api_key_service.count_active(session),
            "documents": 0,
            "storage_bytes": 0,
            "jobs": dict.fromkeys(JOB_STATUSES, 0),
        }
        for name, provider in _stats_providers.items():
            value = await provider(session)
            stats[name] = {**stats["jobs"], **value} if name == "jobs" else int(value)
        return stats

    async def purge(
        self, session: AsyncSession, settings: Settings, actor: Actor | None
    ) -> PurgeResult:
        """Hard-delete what was soft-deleted more than `SOFT_DELETE_RETENTION_DAYS`
        ago: first the registered domains' rows, then users, roles and tenants
        (whose remaining rows go by cascade)."""
        _require_system_scope()
        cutoff = datetime.now(UTC) - timedelta(days=settings.soft_delete_retention_days)
        doomed = await tenant_service.deleted_before(session, cutoff)
        purged: dict[str, int] = {}
        for name, purger in _purgers.items():
            purged[name] = int(await purger(session, cutoff, doomed))
        purged["users"] = await PlatformUserRepository(session).purge_deleted_before(cutoff)
        purged["roles"] = await PlatformRoleRepository(session).purge_deleted_before(cutoff)
        purged["tenants"] = len(await tenant_service.purge_deleted(session, cutoff))
        await audit_service.record(
            session,
            actor,
            "platform.purged",
            "platform",
            None,
            {
                "cutoff": cutoff.isoformat(),
                "purged": purged,
                "tenant_ids": [str(t) for t in doomed],
            },
            tenant_id=None,
        )
        return PurgeResult(cutoff=cutoff, purged=purged)


admin_service = AdminService()
