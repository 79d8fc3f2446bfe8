"""SQL of users."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select

from backend.kit.repository import Repository
from backend.users.models import User


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UserRepository(Repository[User]):
    model = User
    resource_name = "User"

    async def by_email(self, email: str) -> User | None:
        """Live user by email, across tenants when run in a system scope."""
        stmt = self.select().where(func.lower(User.email) == email.strip().lower())
        result = await self.session.execute(stmt)
        user: User | None = result.scalar_one_or_none()
        return user

    async def get_for_update(self, user_id: UUID) -> User | None:
        stmt = self.select().where(User.id == user_id).with_for_update()
        user: User | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return user

    @staticmethod
    def listed(
        role_names: Any,
        tenant_id: UUID,
        *,
        include_deleted: bool,
        active: bool | None = None,
        email_pattern: str | None = None,
        holders: Select[Any] | None = None,
    ) -> Select[Any]:
        """The columns of a user list, with role names (`role_names`) in the
        same statement and each filter given (values or `bindparam`s)."""
        stmt = select(
            User.id,
            User.email,
            User.full_name,
            User.is_active,
            User.created_at,
            User.updated_at,
            User.deleted_at,
            role_names.label("roles"),
        ).where(User.tenant_id == tenant_id)
        if not include_deleted:
            stmt = stmt.where(User.deleted_at.is_(None))
        if active is not None:
            stmt = stmt.where(User.is_active == active)
        if email_pattern is not None:
            stmt = stmt.where(func.lower(User.email).like(email_pattern, escape="\\"))
        if holders is not None:
            stmt = stmt.where(User.id.in_(holders))
        return stmt

    @staticmethod
    def email_pattern(email_contains: str) -> str:
        return f"%{_like_escape(email_contains.strip().lower())}%"

    async def email_taken(self, email: str, *, exclude: UUID | None = None) -> bool:
        """Among live users of the current scope (RLS hides other tenants'; the
        unique index covers them)."""
        stmt = select(User.id).where(
            func.lower(User.email) == email.strip().lower(), User.deleted_at.is_(None)
        )
        if exclude is not None:
            stmt = stmt.where(User.id != exclude)
        return (await self.session.execute(stmt)).first() is not None
