"""Single-use tokens sent by mail (password resets, invitations).

The raw token travels only in the mail; the table keeps its keyed hash. A
token is spent by the request that uses it (row-locked, so two requests
cannot both use it) and then every other outstanding token of the same
purpose for that user is spent too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import OneTimePurpose, OneTimeToken
from backend.auth.repository import OneTimeTokenRepository
from backend.kit.db import Database, scope, system_scope, tenant_scope
from backend.kit.errors import ValidationFailed
from backend.kit.mail import Mail
from backend.kit.security.tokens import keyed_hash, random_token
from backend.settings import Settings


def invalid_token() -> ValidationFailed:
    message = "The token is invalid, expired or already used"
    return ValidationFailed(
        message, errors=[{"loc": ["body", "token"], "msg": message, "type": "value_error"}]
    )


def _hash(settings: Settings, token: str) -> str:
    return keyed_hash(settings.api_key_pepper.get_secret_value(), token)


def _check_shape(token: str) -> None:
    if not token or len(token) > 4096:
        raise invalid_token()


def _check_usable(row: OneTimeToken | None, now: datetime) -> OneTimeToken:
    """The row of a known, unexpired, unused token; else 422."""
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise invalid_token()
    return row


class OneTimeTokenService:
    async def issue(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        tenant_id: UUID,
        user_id: UUID,
        purpose: OneTimePurpose,
        ttl_seconds: int,
    ) -> str:
        token = random_token(32)
        await OneTimeTokenRepository(session).add(
            OneTimeToken(
                tenant_id=tenant_id,
                user_id=user_id,
                purpose=purpose,
                token_hash=_hash(settings, token),
                expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
            )
        )
        return token

    async def check(
        self, database: Database, settings: Settings, token: str, purpose: OneTimePurpose
    ) -> None:
        """422 unless the token is usable, read without a lock in a short
        transaction of its own: a caller with a slow step before `consume`
        (hashing the new password) holds no connection meanwhile, and a bad
        token costs it no hash. `consume` checks again, locked."""
        _check_shape(token)
        # The tenant is not known before the token is found.
        with system_scope(f"auth.{purpose.value}"), tenant_scope(None):
            async with database.transaction() as lookup:
                row = await OneTimeTokenRepository(lookup).by_hash(_hash(settings, token), purpose)
        _check_usable(row, datetime.now(UTC))

    async def consume(
        self, session: AsyncSession, settings: Settings, token: str, purpose: OneTimePurpose
    ) -> OneTimeToken:
        """Spend the token (422 when unknown, expired or used); the caller
        continues in the token's tenant (`scope(session, row.tenant_id)`)."""
        _check_shape(token)
        repository = OneTimeTokenRepository(session)
        # The tenant is not known before the token is found.
        async with scope(session, None, system=f"auth.{purpose.value}"):
            row = await repository.by_hash(_hash(settings, token), purpose, for_update=True)
        now = datetime.now(UTC)
        row = _check_usable(row, now)
        async with scope(session, row.tenant_id):
            await repository.use_all(row.tenant_id, row.user_id, purpose, now)
            row.used_at = now
        return row


one_time_tokens = OneTimeTokenService()


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def invitation_mail(settings: Settings, email: str, token: str, inviter: str | None) -> Mail:
    hours = settings.invitation_ttl_seconds // 3600
    by = f" by {inviter}" if inviter else ""
    return Mail(
        to=email,
        subject="You are invited to Dossier",
        body=(
            f"You have been invited to Dossier{by}.\n\n"
            f"Accept the invitation and choose a password here:\n"
            f"{link(settings, '/accept-invitation', token)}\n\n"
            f"Invitation token: {token}\n\n"
            f"The invitation expires in {hours} hours and works once.\n"
        ),
        secrets=(token,),
    )


def password_reset_mail(settings: Settings, email: str, token: str) -> Mail:
    minutes = settings.password_reset_ttl_seconds // 60
    return Mail(
        to=email,
        subject="Reset your Dossier password",
        body=(
            "Someone (hopefully you) asked to reset the password of this account.\n\n"
            f"Choose a new password here:\n{link(settings, '/reset-password', token)}\n\n"
            f"Reset token: {token}\n\n"
            f"The link expires in {minutes} minutes and works once. If you did not ask "
            "for it, ignore this message: your password is unchanged.\n"
        ),
        secrets=(token,),
    )
