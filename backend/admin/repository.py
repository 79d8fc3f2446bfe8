"""Cross-tenant SQL of the admin domain (always run in a system scope): a
tenant's users, platform-wide counts, and purging of soft-deleted rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, select

from backend.kit.repository import Repository
from backend.roles.models import Role
from backend.users.models import User


class PlatformUserRepository(Repository[User]):
    model = User
    resource_name = "User"

    def of_tenant(self, tenant_id: UUID, *, include_deleted: bool) -> Select[Any]:
        return self.select(include_deleted=include_deleted).where(User.tenant_id == tenant_id)

    async def count_live(self) -> int:
        stmt = select(func.count()).select_from(User).where(User.deleted_at.is_(None))
        return int(await self.session.scalar(stmt) or 0)

    async def purge_deleted_before(self, cutoff: datetime) -> int:
        stmt = delete(User).where(User.deleted_at < cutoff).returning(User.id)
        return len((await self.session.execute(stmt)).all())


class PlatformRoleRepository(Repository[Role]):
    model = Role
    resource_name = "Role"

    async def purge_deleted_before(self, cutoff: datetime) -> int:
        stmt = delete(Role).where(Role.deleted_at < cutoff).returning(Role.id)
        return len((await self.session.execute(stmt)).all())
