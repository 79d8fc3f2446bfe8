"""Business rules of roles: system roles are immutable, custom roles hold any
subset of the catalogue, nobody hands out permissions they lack, and a role a
live user holds cannot be deleted."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import audit_service
from backend.auth.epochs import invalidate_principals
from backend.auth.principal import Principal
from backend.kit.errors import Conflict, DossierError, PermissionDenied, ValidationFailed
from backend.kit.pagination import ListQuery, PageResult
from backend.roles.models import Role
from backend.roles.permissions import OWNER_ROLE, catalogue
from backend.roles.repository import RoleRepository
from backend.roles.schemas import RoleCreate, RoleUpdate

T = TypeVar("T")


class SystemRoleImmutable(DossierError):
    status, code = 409, "system_role"


class RoleInUse(DossierError):
    status, code = 409, "role_in_use"


def ensure_grantable(principal: Principal, permissions: Iterable[str]) -> None:
    """403 unless the principal holds every permission it hands out."""
    beyond = sorted({str(permission) for permission in permissions} - principal.permissions)
    if beyond:
        raise PermissionDenied(f"Cannot grant permissions you do not hold: {', '.join(beyond)}")


class RoleService:
    async def create_system_roles(self, session: AsyncSession, tenant_id: UUID) -> dict[str, Role]:
        """Every tenant starts with `owner`, `admin`, `member` and `viewer`."""
        repository = RoleRepository(session)
        roles = {}
        for name, (description, permissions) in catalogue.system_roles().items():
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

    async def resolve_names(
        self, session: AsyncSession, tenant_id: UUID, names: Iterable[str], *, field: str = "roles"
    ) -> list[Role]:
        """The live roles of these names; 422 naming any that does not exist."""
        wanted = {name.strip().lower(): name for name in names}
        found = await RoleRepository(session).by_names(tenant_id, list(wanted))
        missing = sorted(set(wanted) - {role.name.lower() for role in found})
        if missing:
            message = f"Unknown role: {', '.join(wanted[name] for name in missing)}"
            raise ValidationFailed(
                message, errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
            )
        return sorted(found, key=lambda role: role.name)

    async def assign_roles(
        self, session: AsyncSession, tenant_id: UUID, user_id: UUID, roles: list[Role]
    ) -> None:
        await RoleRepository(session).assign(tenant_id, user_id, [role.id for role in roles])

    async def replace_roles(
        self, session: AsyncSession, tenant_id: UUID, user_id: UUID, roles: list[Role]
    ) -> None:
        await RoleRepository(session).replace_assignments(
            tenant_id, user_id, [role.id for role in roles]
        )
        # A bulk delete, which the session's change tracking does not see.
        invalidate_principals(session, tenant_id)

    async def roles_of(self, session: AsyncSession, tenant_id: UUID, user_id: UUID) -> list[Role]:
        return await RoleRepository(session).roles_of(tenant_id, user_id)

    async def role_names_of(
        self, session: AsyncSession, tenant_id: UUID, user_ids: list[UUID]
    ) -> dict[UUID, list[str]]:
        return await RoleRepository(session).role_names_of(tenant_id, user_ids)

    def role_names_column(self) -> Any:
        """A user list's role names, in the same statement as the users."""
        return RoleRepository.role_names_column()

    def holders_of_name(self, tenant_id: Any, name: Any) -> Select[Any]:
        """A subquery of the ids of users holding the role `name` (values or
        `bindparam`s)."""
        return RoleRepository.holders_of_name(tenant_id, name)

    async def lock_owner_role(self, session: AsyncSession, tenant_id: UUID) -> Role | None:
        """The tenant's `owner` role, row-locked: changes that could remove the
        last owner serialise on it, so two of them cannot both pass the check."""
        return await RoleRepository(session).by_name(tenant_id, OWNER_ROLE, for_update=True)

    async def count_active_holders(
        self, session: AsyncSession, tenant_id: UUID, role_id: UUID
    ) -> int:
        return await RoleRepository(session).count_active_holders(tenant_id, role_id)

    # --- The roles routes -------------------------------------------------------

    async def list_roles(
        self, session: AsyncSession, query: ListQuery, *, include_deleted: bool = False
    ) -> PageResult[Role]:
        repository = RoleRepository(session)
        return await repository.paginate(repository.select(include_deleted=include_deleted), query)

    async def get_role(
        self, session: AsyncSession, role_id: UUID, *, include_deleted: bool = False
    ) -> Role:
        return await RoleRepository(session).get_or_raise(role_id, include_deleted=include_deleted)

    async def create_role(
        self, session: AsyncSession, principal: Principal, data: RoleCreate
    ) -> Role:
        permissions = sorted({str(permission) for permission in data.permissions})
        ensure_grantable(principal, permissions)
        repository = RoleRepository(session)
        if await repository.name_taken(principal.tenant_id, data.name):
            raise Conflict("A role with this name already exists")
        role = await self._guarded(
            repository.create(
                tenant_id=principal.tenant_id,
                name=data.name,
                description=data.description,
                permissions=permissions,
                is_system=False,
            ),
            session,
        )
        changes = {"name": role.name, "description": role.description, "permissions": permissions}
        await audit_service.record(session, principal, "role.created", "role", role.id, changes)
        return role

    async def update_role(
        self, session: AsyncSession, principal: Principal, role_id: UUID, data: RoleUpdate
    ) -> Role:
        repository = RoleRepository(session)
        role = await repository.get_or_raise(role_id)
        if role.is_system:
            raise SystemRoleImmutable("System roles cannot be changed")
        values: dict[str, Any] = data.model_dump(exclude_unset=True)
        if values.get("name") is None:
            values.pop("name", None)
        if "permissions" in values:
            if values["permissions"] is None:
                values.pop("permissions")
            else:
                new = sorted({str(permission) for permission in values["permissions"]})
                # Adding and removing both hand out (or take away) power.
                ensure_grantable(principal, set(new) ^ set(role.permissions))
                values["permissions"] = new
        renamed = "name" in values and values["name"].lower() != role.name.lower()
        if renamed and await repository.name_taken(role.tenant_id, values["name"], exclude=role.id):
            raise Conflict("A role with this name already exists")
        changes = await self._guarded(repository.update(role, values), session)
        if changes:
            await audit_service.record(session, principal, "role.updated", "role", role.id, changes)
        return role

    async def delete_role(self, session: AsyncSession, principal: Principal, role_id: UUID) -> None:
        repository = RoleRepository(session)
        role = await repository.get_or_raise(role_id)
        if role.is_system:
            raise SystemRoleImmutable("System roles cannot be deleted")
        holders = await repository.count_holders(role.tenant_id, role.id)
        if holders:
            raise RoleInUse(
                f"The role is held by {holders} user{'s' if holders != 1 else ''}; "
                "reassign them first",
                count=holders,
            )
        await repository.soft_delete(role, by=principal.id)
        # Deleted users may still hold it: their holds go too, so that neither
        # restoring the role nor restoring them silently grants it again.
        await repository.remove_assignments(role.tenant_id, role.id)
        invalidate_principals(session, role.tenant_id)
        await audit_service.record(session, principal, "role.deleted", "role", role.id)

    async def restore_role(
        self, session: AsyncSession, principal: Principal, role_id: UUID
    ) -> Role:
        repository = RoleRepository(session)
        role = await repository.get_or_raise(role_id, include_deleted=True)
        if role.deleted_at is None:
            return role
        if await repository.name_taken(role.tenant_id, role.name):
            raise Conflict("A live role already has this name")
        await self._guarded(repository.restore(role), session)
        await audit_service.record(session, principal, "role.restored", "role", role.id)
        return role

    @staticmethod
    async def _guarded(operation: Awaitable[T], session: AsyncSession) -> T:
        """A unique-name race lost to a concurrent request: 409, not 500."""
        try:
            async with session.begin_nested():
                return await operation
        except IntegrityError:
            raise Conflict("A role with this name already exists") from None


role_service = RoleService()
