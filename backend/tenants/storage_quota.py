"""The tenant's storage quota, one check for every writer of blobs:
documents, resumable uploads, job artifacts, crawl exports, segment files.

Writers check under the tenant's storage lock (a transaction-scoped advisory
lock), so two writers of one tenant cannot both pass the quota on bytes the
other has not committed yet."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.errors import DossierError
from backend.settings import Settings
from backend.tenants.service import tenant_service


class QuotaExceeded(DossierError):
    status, code = 413, "quota_exceeded"


async def lock_tenant_storage(session: AsyncSession, tenant_id: UUID) -> None:
    """Serialise the tenant's quota checks until the transaction ends."""
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"storage:{tenant_id}", 0)))
    )


async def check_storage_quota(
    session: AsyncSession,
    settings: Settings,
    tenant_id: UUID,
    incoming: int,
    *,
    what: str = "This upload",
    lock: bool = False,
) -> None:
    """413 `quota_exceeded` when `incoming` more bytes would pass the plan's
    storage. With `lock`, the tenant's storage lock is taken first (held until
    the transaction ends), so writers that check under it see each other's
    bytes; a check without it only refuses early."""
    if lock:
        await lock_tenant_storage(session, tenant_id)
    limits = await tenant_service.limits_for(session, tenant_id, settings)
    used = await tenant_service.usage_of(session, tenant_id, "storage_bytes")
    if used + incoming > limits.storage_bytes:
        raise QuotaExceeded(
            f"{what} would exceed the tenant's storage quota",
            storage_bytes=limits.storage_bytes,
            used_bytes=used,
        )
