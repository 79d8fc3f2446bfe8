"""SQL of roles and role assignments."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import select

from backend.kit.repository import Repository
from backend.roles.models import Role, UserRole


class RoleRepository(Repository[Role]):
    model = Role
    resource_name = "Role"

    async def by_names(self, tenant_id: UUID, names: Iterable[str]) -> list[Role]:
        wanted = [name.lower() for name in names]
        stmt = self.select().where(Role.tenant_id == tenant_id)
        result = await self.session.execute(stmt)
        return [role for role in result.scalars() if role.name.lower() in wanted]

    async def assign(self, tenant_id: UUID, user_id: UUID, role_ids: Iterable[UUID]) -> None:
        for role_id in role_ids:
            self.session.add(UserRole(tenant_id=tenant_id, user_id=user_id, role_id=role_id))
        await self.session.flush()

    async def role_names_of(
        self, tenant_id: UUID, user_ids: Iterable[UUID]
    ) -> dict[UUID, list[str]]:
        ids = list(user_ids)
        if not ids:
            return {}
        stmt = (
            select(UserRole.user_id, Role.name)
            .join(Role, Role.id == UserRole.role_id)
            .where(
                UserRole.tenant_id == tenant_id,
                UserRole.user_id.in_(ids),
                Role.deleted_at.is_(None),
            )
            .order_by(Role.name)
        )
        names: dict[UUID, list[str]] = {user_id: [] for user_id in ids}
        for user_id, name in (await self.session.execute(stmt)).all():
            names[user_id].append(name)
        return names
