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

    def filtered(
        self,
        *,
        include_deleted: bool = False,
        active: bool | None = None,
        email_contains: str | None = None,
        holders: Select[Any] | None = None,
    ) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if active is not None:
            stmt = stmt.where(User.is_active.is_(active))
        if email_contains:
            pattern = f"%{_like_escape(email_contains.strip().lower())}%"
            stmt = stmt.where(func.lower(User.email).like(pattern, escape="\\"))
        if holders is not None:
            stmt = stmt.where(User.id.in_(holders))
        return stmt

    async def email_taken(self, email: str, *, exclude: UUID | None = None) -> bool:
        """Among live users of the current scope (RLS hides other tenants'; the
        unique index covers them)."""
        stmt = select(User.id).where(
            func.lower(User.email) == email.strip().lower(), User.deleted_at.is_(None)
        )
        if exclude is not None:
            stmt = stmt.where(User.id != exclude)
        return (await self.session.execute(stmt)).first() is not None
