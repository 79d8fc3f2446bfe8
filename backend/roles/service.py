"""Business rules of roles."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.roles.models import Role
from backend.roles.permissions import SYSTEM_ROLES
from backend.roles.repository import RoleRepository


class RoleService:
    async def create_system_roles(self, session: AsyncSession, tenant_id: UUID) -> dict[str, Role]:
        """Every tenant starts with `owner`, `admin`, `member` and `viewer`."""
        repository = RoleRepository(session)
        roles = {}
        for name, (description, permissions) in SYSTEM_ROLES.items():
            roles[name] = await repository.create(
                tenant_id=tenant_id,
                name=name,
                description=description,
                permissions=sorted(permissions),
                is_system=True,
            )
        return roles

    async def roles_by_names(
        self, session: AsyncSession, tenant_id: UUID, names: list[str]
    ) -> list[Role]:
        return await RoleRepository(session).by_names(tenant_id, names)

    async def assign_roles(
        self, session: AsyncSession, tenant_id: UUID, user_id: UUID, roles: list[Role]
    ) -> None:
        await RoleRepository(session).assign(tenant_id, user_id, [role.id for role in roles])

    async def role_names_of(
        self, session: AsyncSession, tenant_id: UUID, user_ids: list[UUID]
    ) -> dict[UUID, list[str]]:
        return await RoleRepository(session).role_names_of(tenant_id, user_ids)


role_service = RoleService()
