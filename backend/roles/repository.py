"""SQL of roles and role assignments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.types import UserDefinedType

from backend.kit.repository import Repository
from backend.roles.models import Role, UserRole
from backend.users.models import User


class _Strings(UserDefinedType[list[str]]):
    """`varchar[]` read as asyncpg returns it (a list of str), without
    SQLAlchemy's per-item array processing."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "varchar[]"


# Built once: the expression depends on nothing but the enclosing `User`.
_ROLE_NAMES = func.coalesce(
    select(func.array_agg(aggregate_order_by(Role.name, Role.name)))
    .join(UserRole, Role.id == UserRole.role_id)
    .where(
        UserRole.tenant_id == User.tenant_id,
        UserRole.user_id == User.id,
        Role.deleted_at.is_(None),
    )
    .scalar_subquery(),
    text("'{}'::varchar[]"),
    type_=_Strings(),
)


class RoleRepository(Repository[Role]):
    model = Role
    resource_name = "Role"

    @staticmethod
    def role_names_column() -> Any:
        """The role names of the enclosing query's `User` (sorted; `{}` when
        none), as a correlated subquery: a user list reads them in the same
        statement as the users instead of a second query."""
        return _ROLE_NAMES

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

    async def by_name(self, tenant_id: UUID, name: str, *, for_update: bool = False) -> Role | None:
        stmt = self.select().where(
            Role.tenant_id == tenant_id, func.lower(Role.name) == name.lower()
        )
        if for_update:
            stmt = stmt.with_for_update()
        role: Role | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return role

    async def name_taken(self, tenant_id: UUID, name: str, *, exclude: UUID | None = None) -> bool:
        stmt = select(Role.id).where(
            Role.tenant_id == tenant_id,
            func.lower(Role.name) == name.lower(),
            Role.deleted_at.is_(None),
        )
        if exclude is not None:
            stmt = stmt.where(Role.id != exclude)
        return (await self.session.execute(stmt)).first() is not None

    async def roles_of(self, tenant_id: UUID, user_id: UUID) -> list[Role]:
        stmt = (
            self.select()
            .join(UserRole, (UserRole.role_id == Role.id) & (UserRole.tenant_id == Role.tenant_id))
            .where(UserRole.tenant_id == tenant_id, UserRole.user_id == user_id)
            .order_by(Role.name)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def replace_assignments(
        self, tenant_id: UUID, user_id: UUID, role_ids: Iterable[UUID]
    ) -> None:
        """The user holds exactly `role_ids` afterwards (deleted roles' rows go too)."""
        wanted = set(role_ids)
        await self.session.execute(
            delete(UserRole)
            .where(UserRole.tenant_id == tenant_id, UserRole.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        await self.assign(tenant_id, user_id, sorted(wanted))

    async def remove_assignments(self, tenant_id: UUID, role_id: UUID) -> None:
        """Every user's hold of the role goes, deleted users' included."""
        await self.session.execute(
            delete(UserRole)
            .where(UserRole.tenant_id == tenant_id, UserRole.role_id == role_id)
            .execution_options(synchronize_session=False)
        )

    def holders(self, tenant_id: UUID, role_id: UUID) -> Select[Any]:
        """Ids of live users holding the role."""
        return (
            select(UserRole.user_id)
            .join(User, (User.id == UserRole.user_id) & (User.tenant_id == UserRole.tenant_id))
            .where(
                UserRole.tenant_id == tenant_id,
                UserRole.role_id == role_id,
                User.deleted_at.is_(None),
            )
        )

    @staticmethod
    def holders_of_name(tenant_id: Any, name: Any) -> Select[Any]:
        """Ids of users holding a live role of this name (for list filters);
        the arguments may be values or `bindparam`s."""
        return (
            select(UserRole.user_id)
            .join(Role, (Role.id == UserRole.role_id) & (Role.tenant_id == UserRole.tenant_id))
            .where(
                UserRole.tenant_id == tenant_id,
                func.lower(Role.name) == func.lower(name),
                Role.deleted_at.is_(None),
            )
        )

    async def count_holders(self, tenant_id: UUID, role_id: UUID) -> int:
        stmt = select(func.count()).select_from(self.holders(tenant_id, role_id).subquery())
        return int(await self.session.scalar(stmt) or 0)

    async def count_active_holders(self, tenant_id: UUID, role_id: UUID) -> int:
        stmt = select(func.count()).select_from(
            self.holders(tenant_id, role_id).where(User.is_active.is_(True)).subquery()
        )
        return int(await self.session.scalar(stmt) or 0)
