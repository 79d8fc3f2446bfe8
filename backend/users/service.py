"""Business rules of users.

* Nobody grants a role holding permissions they lack (403), and nobody
  changes the roles of, deactivates, deletes or restores a user holding
  permissions they lack (403): an admin cannot demote or remove an owner.
* The last active owner of a tenant can be neither demoted, deactivated nor
  deleted (409 `last_owner`); changes that could remove an owner serialise
  on the tenant's `owner` role row.
* A user cannot delete themselves (409).
* Deactivating or deleting a user ends every session they have.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.audit.service import audit_service
from backend.auth.models import OneTimePurpose
from backend.auth.one_time import invitation_mail, one_time_tokens
from backend.auth.principal import Principal
from backend.auth.sessions import session_service
from backend.kit.db import after_commit
from backend.kit.errors import Conflict, DossierError, ValidationFailed
from backend.kit.listing import HotList
from backend.kit.mail import Mailer
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.security.passwords import hash_password, password_problems
from backend.roles.models import Role
from backend.roles.permissions import OWNER_ROLE
from backend.roles.service import ensure_grantable, role_service
from backend.settings import Settings
from backend.users.models import User
from backend.users.repository import UserRepository
from backend.users.schemas import InvitationCreate, UserCreate, UserOut, UserUpdate


def _user_list(binds: Mapping[str, Any], include_deleted: Hashable) -> Select[Any]:
    """A user list's statement for one shape (filters given, deleted rows
    included or not)."""
    tenant_id, role = binds["tenant_id"], binds.get("role")
    return UserRepository.listed(
        role_service.role_names_column(),
        tenant_id,
        include_deleted=bool(include_deleted),
        active=binds.get("active"),
        email_pattern=binds.get("email"),
        holders=role_service.holders_of_name(tenant_id, role) if role is not None else None,
    )


_USER_LIST = HotList(User, _user_list)


class LastOwner(DossierError):
    status, code = 409, "last_owner"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password(password: str, email: str | None, field: str = "password") -> None:
    """422 when `password` is refused (`email`: the address it must differ
    from, when known)."""
    problem = password_problems(password, email)
    if problem:
        raise ValidationFailed(
            f"Password {problem}",
            errors=[{"loc": ["body", field], "msg": problem, "type": "value_error"}],
        )


async def new_password_hash(
    settings: Settings, password: str, email: str | None, field: str = "password"
) -> str:
    """A new password, checked (422) and hashed. Callers hash before their
    request's first query, so that no database connection is held during the
    slow hash."""
    check_password(password, email, field)
    return await hash_password(settings, password)


def _permissions_of(roles: Iterable[Role]) -> set[str]:
    return {permission for role in roles for permission in role.permissions}


def user_out(user: User, roles: list[str]) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        is_active=user.is_active,
        roles=roles,
        created_at=user.created_at,
        updated_at=user.updated_at,
        deleted_at=user.deleted_at,
    )


class UserService:
    async def create_user(
        self,
        session: AsyncSession,
        *,
        tenant_id: UUID,
        email: str,
        password_hash: str | None,
        full_name: str | None = None,
        roles: list[Role] | None = None,
        is_superadmin: bool = False,
        is_active: bool = True,
    ) -> User:
        """A new user with a password hashed beforehand (`new_password_hash`);
        `password_hash=None` creates an invited user with no password yet."""
        email = normalise_email(email)
        repository = UserRepository(session)
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

    # --- The users routes -------------------------------------------------------

    async def list_users(
        self,
        connection: AsyncConnection,
        principal: Principal,
        query: ListQuery,
        *,
        role: str | None = None,
        active: bool | None = None,
        email: str | None = None,
        include_deleted: bool = False,
    ) -> PageResult[RowMapping]:
        """A hot read: the columns of `UserOut` as plain rows (role names in
        the same statement), the statement built once per shape."""
        values = {
            "tenant_id": principal.tenant_id,
            "role": role or None,
            "active": active,
            "email": UserRepository.email_pattern(email) if email else None,
        }
        return await _USER_LIST.page(connection, query, values, include_deleted)

    async def get_user(
        self, session: AsyncSession, user_id: UUID, *, include_deleted: bool = False
    ) -> UserOut:
        user = await UserRepository(session).get_or_raise(user_id, include_deleted=include_deleted)
        return await self._out(session, user)

    async def create_user_by(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: UserCreate
    ) -> UserOut:
        password_hash = await new_password_hash(settings, data.password, data.email)
        roles = await self._grantable_roles(session, principal, data.roles)
        user = await self.create_user(
            session,
            tenant_id=principal.tenant_id,
            email=data.email,
            password_hash=password_hash,
            full_name=data.full_name,
            roles=roles,
        )
        names = [role.name for role in roles]
        changes = {"email": user.email, "full_name": user.full_name, "roles": names}
        await audit_service.record(session, principal, "user.created", "user", user.id, changes)
        return user_out(user, names)

    async def invite_user(
        self,
        session: AsyncSession,
        settings: Settings,
        mailer: Mailer,
        principal: Principal,
        data: InvitationCreate,
        inviter_email: str | None = None,
    ) -> UserOut:
        """An inactive user without a password, and a mailed single-use link to
        `POST /auth/invitations/accept`, which sets the password and activates."""
        roles = await self._grantable_roles(session, principal, data.roles)
        user = await self.create_user(
            session,
            tenant_id=principal.tenant_id,
            email=data.email,
            password_hash=None,
            full_name=data.full_name,
            roles=roles,
            is_active=False,
        )
        token = await one_time_tokens.issue(
            session,
            settings,
            tenant_id=user.tenant_id,
            user_id=user.id,
            purpose=OneTimePurpose.INVITATION,
            ttl_seconds=settings.invitation_ttl_seconds,
        )
        mail = invitation_mail(settings, user.email, token, inviter_email)

        async def send() -> None:
            mailer.send_later(mail)

        after_commit(session, send)
        names = [role.name for role in roles]
        changes = {"email": user.email, "full_name": user.full_name, "roles": names}
        await audit_service.record(session, principal, "user.invited", "user", user.id, changes)
        return user_out(user, names)

    async def update_user(
        self, session: AsyncSession, principal: Principal, user_id: UUID, data: UserUpdate
    ) -> UserOut:
        repository = UserRepository(session)
        values: dict[str, Any] = data.model_dump(exclude_unset=True)
        if values.get("is_active", True) is None:
            values.pop("is_active")
        user = await repository.get_or_raise(user_id)
        if "is_active" in values and values["is_active"] != user.is_active:
            roles = await role_service.roles_of(session, user.tenant_id, user.id)
            ensure_grantable(principal, _permissions_of(roles))
            if not values["is_active"]:
                await self._ensure_owner_remains(session, user, roles)
                user = await self._locked(repository, user_id)
                values["tokens_valid_after"] = datetime.now(UTC)
                await session_service.revoke_user(session, user.tenant_id, user.id)
        changes = await repository.update(user, values)
        changes.pop("tokens_valid_after", None)
        if changes:
            await audit_service.record(session, principal, "user.updated", "user", user.id, changes)
        return await self._out(session, user)

    async def delete_user(self, session: AsyncSession, principal: Principal, user_id: UUID) -> None:
        repository = UserRepository(session)
        user = await repository.get_or_raise(user_id)
        roles = await role_service.roles_of(session, user.tenant_id, user.id)
        if principal.is_user and principal.id == user.id:
            await self._ensure_owner_remains(session, user, roles)
            raise Conflict("You cannot delete yourself")
        ensure_grantable(principal, _permissions_of(roles))
        await self._ensure_owner_remains(session, user, roles)
        user = await self._locked(repository, user_id)
        await repository.update(user, {"tokens_valid_after": datetime.now(UTC)})
        await session_service.revoke_user(session, user.tenant_id, user.id)
        await repository.soft_delete(user, by=principal.id)
        await audit_service.record(
            session, principal, "user.deleted", "user", user.id, {"email": user.email}
        )

    async def restore_user(
        self, session: AsyncSession, principal: Principal, user_id: UUID
    ) -> UserOut:
        repository = UserRepository(session)
        user = await repository.get_or_raise(user_id, include_deleted=True)
        if user.deleted_at is None:
            return await self._out(session, user)
        roles = await role_service.roles_of(session, user.tenant_id, user.id)
        ensure_grantable(principal, _permissions_of(roles))
        if await repository.email_taken(user.email):
            raise Conflict("A live user already has this email")
        try:
            async with session.begin_nested():
                await repository.restore(user)
        except IntegrityError:
            raise Conflict("A live user already has this email") from None
        await audit_service.record(session, principal, "user.restored", "user", user.id)
        return user_out(user, [role.name for role in roles])

    async def set_roles(
        self, session: AsyncSession, principal: Principal, user_id: UUID, names: list[str]
    ) -> UserOut:
        """`PUT /users/{id}/roles`: the user holds exactly these roles afterwards.
        Every role added or removed must be within the caller's permissions."""
        repository = UserRepository(session)
        user = await repository.get_or_raise(user_id)
        wanted = await role_service.resolve_names(session, user.tenant_id, names)
        current = await role_service.roles_of(session, user.tenant_id, user.id)
        current_ids = {role.id for role in current}
        wanted_ids = {role.id for role in wanted}
        added = [role for role in wanted if role.id not in current_ids]
        removed = [role for role in current if role.id not in wanted_ids]
        ensure_grantable(principal, _permissions_of(added) | _permissions_of(removed))
        if any(role.name == OWNER_ROLE and role.is_system for role in removed):
            await self._ensure_owner_remains(session, user, current)
        if added or removed:
            await role_service.replace_roles(session, user.tenant_id, user.id, wanted)
            changes = {
                "roles": {
                    "before": sorted(role.name for role in current),
                    "after": sorted(role.name for role in wanted),
                }
            }
            await audit_service.record(
                session, principal, "user.roles_changed", "user", user.id, changes
            )
        return user_out(user, sorted(role.name for role in wanted))

    # --- Helpers ----------------------------------------------------------------

    async def _out(self, session: AsyncSession, user: User) -> UserOut:
        names = await role_service.role_names_of(session, user.tenant_id, [user.id])
        return user_out(user, names[user.id])

    async def _grantable_roles(
        self, session: AsyncSession, principal: Principal, names: list[str]
    ) -> list[Role]:
        roles = await role_service.resolve_names(session, principal.tenant_id, names)
        ensure_grantable(principal, _permissions_of(roles))
        return roles

    async def _locked(self, repository: UserRepository, user_id: UUID) -> User:
        return await repository.get_for_update(user_id) or await repository.get_or_raise(user_id)

    async def _ensure_owner_remains(
        self, session: AsyncSession, user: User, roles: list[Role]
    ) -> None:
        """409 `last_owner` when `user` is the tenant's last active owner."""
        if not user.is_active or not any(
            role.name == OWNER_ROLE and role.is_system for role in roles
        ):
            return
        owner_role = await role_service.lock_owner_role(session, user.tenant_id)
        if owner_role is None:
            return
        if await role_service.count_active_holders(session, user.tenant_id, owner_role.id) <= 1:
            raise LastOwner(
                "The tenant's last active owner cannot be removed, demoted or deactivated"
            )


user_service = UserService()
