"""The signed-in user's own session: logout, logout everywhere, password
change and the `me` profile."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import audit_service
from backend.auth.principal import Principal
from backend.auth.revocation import revoke_token
from backend.auth.schemas import MeOut, TenantBrief
from backend.auth.sessions import TokenPair, session_service
from backend.kit.db import Database
from backend.kit.errors import PermissionDenied, Unauthenticated
from backend.kit.security.passwords import verify_password
from backend.settings import Settings
from backend.users.repository import UserRepository
from backend.users.service import new_password_hash


def _session_principal(principal: Principal) -> UUID:
    """The session id of a user's bearer token; other principals have none."""
    if not principal.is_user or principal.session_id is None:
        raise PermissionDenied("Only a user's bearer token has a session")
    return principal.session_id


class AccountService:
    async def logout(
        self, session: AsyncSession, redis: Redis, settings: Settings, principal: Principal
    ) -> None:
        """This session ends: its access token is denylisted until it would have
        expired, and its refresh family is revoked."""
        session_id = _session_principal(principal)
        assert principal.token_id is not None
        assert principal.token_expires_at is not None
        await revoke_token(
            redis, settings.redis_key_prefix, principal.token_id, principal.token_expires_at
        )
        await session_service.revoke_family(session, principal.tenant_id, session_id)
        await audit_service.record(session, principal, "auth.logout", "session", session_id)

    async def logout_all(
        self, session: AsyncSession, redis: Redis, settings: Settings, principal: Principal
    ) -> None:
        """Every session of the user ends: tokens issued before now are void
        (`users.tokens_valid_after`) and every refresh family is revoked."""
        _session_principal(principal)
        users = UserRepository(session)
        user = await users.get_or_raise(principal.id)
        await users.update(user, {"tokens_valid_after": datetime.now(UTC)})
        revoked = await session_service.revoke_user(session, principal.tenant_id, principal.id)
        assert principal.token_id is not None
        assert principal.token_expires_at is not None
        await revoke_token(
            redis, settings.redis_key_prefix, principal.token_id, principal.token_expires_at
        )
        await audit_service.record(
            session, principal, "auth.logout_all", "user", principal.id, {"sessions": revoked}
        )

    async def change_password(
        self,
        session: AsyncSession,
        database: Database,
        settings: Settings,
        principal: Principal,
        current_password: str,
        new_password: str,
    ) -> TokenPair:
        """Every other session ends; this one continues with the fresh pair
        returned (its earlier tokens are void too).

        The stored hash is read in a short transaction of its own, so that no
        connection is held while the passwords are verified and hashed; the
        request's transaction then finds it unchanged under a row lock."""
        session_id = _session_principal(principal)
        async with database.transaction() as lookup:
            stored = await UserRepository(lookup).get_or_raise(principal.id)
            verified_hash, email = stored.password_hash, stored.email
        if not await verify_password(settings, current_password, verified_hash):
            raise PermissionDenied("The current password is incorrect")
        new_hash = await new_password_hash(settings, new_password, email, field="new_password")
        users = UserRepository(session)
        user = await users.get_for_update(principal.id) or await users.get_or_raise(principal.id)
        if user.password_hash != verified_hash:  # changed since it was verified
            raise PermissionDenied("The current password is incorrect")
        await users.update(
            user, {"password_hash": new_hash, "tokens_valid_after": datetime.now(UTC)}
        )
        await session_service.revoke_user(session, principal.tenant_id, principal.id)
        await audit_service.record(session, principal, "auth.password_changed", "user", user.id)
        # This session goes on (same `sid`) with the pair returned: its earlier
        # access and refresh tokens are void like every other session's.
        return await session_service.open(
            session,
            settings,
            tenant_id=principal.tenant_id,
            user_id=principal.id,
            family_id=session_id,
        )

    def me(self, principal: Principal) -> MeOut:
        """From the profile read (or cached) with the principal: no query."""
        if not principal.is_user:
            raise PermissionDenied("Only users have a profile; API keys do not")
        row = principal.profile
        if row is None:
            raise Unauthenticated()
        return MeOut(
            id=row["id"],
            email=row["email"],
            full_name=row["full_name"],
            is_active=row["is_active"],
            roles=list(row["roles"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            tenant=TenantBrief(
                id=row["tenant_id"],
                name=row["tenant_name"],
                slug=row["tenant_slug"],
                plan=row["tenant_plan"],
                status=row["tenant_status"],
            ),
            permissions=sorted(principal.permissions),
            is_superadmin=row["is_superadmin"],
        )


account_service = AccountService()
