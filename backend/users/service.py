"""Business rules of users."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.errors import Conflict, ValidationFailed
from backend.kit.security.passwords import hash_password, password_problems
from backend.roles.models import Role
from backend.roles.service import role_service
from backend.settings import Settings
from backend.users.models import User
from backend.users.repository import UserRepository


def normalise_email(email: str) -> str:
    return email.strip().lower()


class UserService:
    async def create_user(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        tenant_id: UUID,
        email: str,
        password: str | None,
        full_name: str | None = None,
        roles: list[Role] | None = None,
        is_superadmin: bool = False,
        is_active: bool = True,
    ) -> User:
        """A new user; `password=None` creates an invited user with no password yet."""
        email = normalise_email(email)
        repository = UserRepository(session)
        password_hash = None
        if password is not None:
            problem = password_problems(password, email)
            if problem:
                raise ValidationFailed(
                    f"Password {problem}",
                    errors=[{"loc": ["body", "password"], "msg": problem, "type": "value_error"}],
                )
            password_hash = await hash_password(settings, password)
        if await repository.by_email(email) is not None:
            raise Conflict("A user with this email already exists")
        try:
            # The unique index also covers other tenants' users, which RLS hides.
            async with session.begin_nested():
                user = await repository.create(
                    tenant_id=tenant_id,
                    email=email,
                    full_name=full_name,
                    password_hash=password_hash,
                    is_superadmin=is_superadmin,
                    is_active=is_active,
                )
        except IntegrityError:
            raise Conflict("A user with this email already exists") from None
        if roles:
            await role_service.assign_roles(session, tenant_id, user.id, roles)
        return user


user_service = UserService()
