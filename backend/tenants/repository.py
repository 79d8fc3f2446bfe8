"""SQL of tenants."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, select

from backend.kit.repository import Repository
from backend.tenants.models import Tenant


class TenantRepository(Repository[Tenant]):
    model = Tenant
    resource_name = "Tenant"

    @staticmethod
    def live_columns(tenant_id: Any) -> Select[Any]:
        """The columns of the live tenant `tenant_id` (a value or a `bindparam`)."""
        return select(*Tenant.__table__.columns).where(
            Tenant.id == tenant_id, Tenant.deleted_at.is_(None)
        )

    async def slug_taken(self, slug: str) -> bool:
        stmt = select(Tenant.id).where(Tenant.slug == slug, Tenant.deleted_at.is_(None))
        return (await self.session.execute(stmt)).first() is not None

    async def count_live(self) -> int:
        stmt = select(func.count()).select_from(Tenant).where(Tenant.deleted_at.is_(None))
        return int(await self.session.scalar(stmt) or 0)

    async def deleted_before(self, cutoff: datetime) -> list[UUID]:
        stmt = select(Tenant.id).where(Tenant.deleted_at < cutoff)
        return list((await self.session.execute(stmt)).scalars())

    async def purge_deleted_before(self, cutoff: datetime) -> list[UUID]:
        stmt = delete(Tenant).where(Tenant.deleted_at < cutoff).returning(Tenant.id)
        return list((await self.session.execute(stmt)).scalars())
