"""Mailed single-use tokens: password reset and invitation acceptance.

A reset request answers alike whether or not the address exists; the mail,
if any, leaves in the background after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import audit_service
from backend.auth.login import UserActor
from backend.auth.models import OneTimePurpose
from backend.auth.one_time import invalid_token, one_time_tokens, password_reset_mail
from backend.auth.repository import AuthRepository
from backend.auth.sessions import TokenPair, session_service
from backend.kit.db import Database, after_commit, scope
from backend.kit.mail import Mailer
from backend.roles.service import role_service
from backend.settings import Settings
from backend.tenants.models import TenantStatus
from backend.users.models import User
from backend.users.repository import UserRepository
from backend.users.schemas import UserOut
from backend.users.service import check_password, new_password_hash, normalise_email, user_out


async def _hash_before_consuming(
    database: Database,
    settings: Settings,
    token: str,
    purpose: OneTimePurpose,
    password: str,
    field: str,
) -> str:
    """The new password's hash, made before the request's first query (no
    connection is held while hashing) once the token is known to be good (a
    bad one costs no hash). Whether the password differs from the email is
    checked once the user is read."""
    await one_time_tokens.check(database, settings, token, purpose)
    return await new_password_hash(settings, password, None, field)


@dataclass(frozen=True, slots=True)
class Accepted:
    user: UserOut
    tokens: TokenPair


class RecoveryService:
    async def request_password_reset(
        self, session: AsyncSession, settings: Settings, mailer: Mailer, email: str
    ) -> None:
        """Answers alike whether or not the address exists: the mail, if any,
        leaves in the background after commit."""
        email = normalise_email(email)
        async with scope(session, None, system="auth.password_reset_request"):
            candidate = await AuthRepository(session).login_candidate(email)
        if (
            candidate is None
            or not candidate["is_active"]
            or candidate["tenant_deleted"]
            or candidate["tenant_status"] != TenantStatus.ACTIVE
        ):
            return
        async with scope(session, candidate["tenant_id"]):
            token = await one_time_tokens.issue(
                session,
                settings,
                tenant_id=candidate["tenant_id"],
                user_id=candidate["id"],
                purpose=OneTimePurpose.PASSWORD_RESET,
                ttl_seconds=settings.password_reset_ttl_seconds,
            )
            await audit_service.record(
                session,
                None,
                "auth.password_reset_requested",
                "user",
                candidate["id"],
            )
        mail = password_reset_mail(settings, candidate["email"], token)

        async def send() -> None:
            mailer.send_later(mail)

        after_commit(session, send)

    async def confirm_password_reset(
        self,
        session: AsyncSession,
        database: Database,
        settings: Settings,
        token: str,
        new_password: str,
    ) -> None:
        """Sets the password and ends every session of the user."""
        purpose = OneTimePurpose.PASSWORD_RESET
        new_hash = await _hash_before_consuming(
            database, settings, token, purpose, new_password, "new_password"
        )
        row = await one_time_tokens.consume(session, settings, token, purpose)
        async with scope(session, row.tenant_id):
            users = UserRepository(session)
            user = await users.get(row.user_id)
            if user is None or not user.is_active:
                raise invalid_token()
            check_password(new_password, user.email, field="new_password")
            await users.update(
                user, {"password_hash": new_hash, "tokens_valid_after": datetime.now(UTC)}
            )
            await session_service.revoke_user(session, user.tenant_id, user.id)
            await audit_service.record(
                session, UserActor(user.id), "auth.password_reset", "user", user.id
            )

    async def accept_invitation(
        self,
        session: AsyncSession,
        database: Database,
        settings: Settings,
        token: str,
        password: str,
        full_name: str | None,
    ) -> Accepted:
        """Sets the invited user's password, activates them and signs them in."""
        purpose = OneTimePurpose.INVITATION
        password_hash = await _hash_before_consuming(
            database, settings, token, purpose, password, "password"
        )
        row = await one_time_tokens.consume(session, settings, token, purpose)
        async with scope(session, row.tenant_id):
            users = UserRepository(session)
            user = await users.get(row.user_id)
            if user is None or user.password_hash is not None:
                raise invalid_token()
            check_password(password, user.email)
            values: dict[str, object] = {"password_hash": password_hash, "is_active": True}
            if full_name is not None:
                values["full_name"] = full_name
            changes = await users.update(user, values)
            changes.pop("password_hash", None)
            await audit_service.record(
                session, UserActor(user.id), "user.invitation_accepted", "user", user.id, changes
            )
            tokens = await session_service.open(
                session, settings, tenant_id=user.tenant_id, user_id=user.id
            )
            out = await self._user_out(session, user)
        return Accepted(user=out, tokens=tokens)

    async def _user_out(self, session: AsyncSession, user: User) -> UserOut:
        names = await role_service.role_names_of(session, user.tenant_id, [user.id])
        return user_out(user, names[user.id])


recovery_service = RecoveryService()
