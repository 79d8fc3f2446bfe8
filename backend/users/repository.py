"""SQL of users."""

from __future__ import annotations

from sqlalchemy import func

from backend.kit.repository import Repository
from backend.users.models import User


class UserRepository(Repository[User]):
    model = User
    resource_name = "User"

    async def by_email(self, email: str) -> User | None:
        """Live user by email, across tenants when run in a system scope."""
        stmt = self.select().where(func.lower(User.email) == email.strip().lower())
        result = await self.session.execute(stmt)
        user: User | None = result.scalar_one_or_none()
        return user
