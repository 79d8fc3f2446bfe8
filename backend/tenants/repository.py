"""SQL of tenants."""

from __future__ import annotations

from sqlalchemy import select

from backend.kit.repository import Repository
from backend.tenants.models import Tenant


class TenantRepository(Repository[Tenant]):
    model = Tenant
    resource_name = "Tenant"

    async def slug_taken(self, slug: str) -> bool:
        stmt = select(Tenant.id).where(Tenant.slug == slug, Tenant.deleted_at.is_(None))
        return (await self.session.execute(stmt)).first() is not None
