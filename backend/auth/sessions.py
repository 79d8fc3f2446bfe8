"""Sessions: a refresh-token family per login, and the access tokens minted
for it (their `sid` claim is the family id).

Refresh tokens are opaque random strings; only their keyed hash is stored,
with the family and the parent token, so that a rotation chain can be
followed and a reused token revokes its whole family.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import RefreshToken
from backend.auth.repository import RefreshTokenRepository
from backend.kit.models import uuid7
from backend.kit.security.jwt import issue_access_token
from backend.kit.security.tokens import keyed_hash, random_token
from backend.settings import Settings


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


@dataclass(frozen=True, slots=True)
class Successor:
    """The refresh token a rotation spends, and when it was first spent."""

    token: str
    first_spent_at: datetime


def refresh_token_hash(settings: Settings, token: str) -> str:
    return keyed_hash(settings.api_key_pepper.get_secret_value(), token)


class SessionService:
    async def open(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        tenant_id: UUID,
        user_id: UUID,
        family_id: UUID | None = None,
        parent_id: UUID | None = None,
        successor_of: Successor | None = None,
    ) -> TokenPair:
        """A new token pair: a new session, or the next link of `family_id`.

        With `successor_of` (a rotation), the pair is derived from the spent
        token and the time it was first spent, so that a second use within
        the grace period answers the very same pair, never a second session:
        the link is stored only once."""
        family_id = family_id or uuid7()
        issued_at: float | None = None
        token_id: str | None = None
        if successor_of is None:
            refresh = random_token(32)
        else:
            refresh = keyed_hash(
                settings.signing_secret.get_secret_value(),
                f"refresh-successor:{successor_of.token}",
            )
            issued_at = successor_of.first_spent_at.timestamp()
            token_id = keyed_hash(settings.signing_secret.get_secret_value(), f"jti:{refresh}")[:32]
        repository = RefreshTokenRepository(session)
        token_hash = refresh_token_hash(settings, refresh)
        if successor_of is None or await repository.by_hash(token_hash) is None:
            await repository.add(
                RefreshToken(
                    tenant_id=tenant_id,
                    user_id=user_id,
                    family_id=family_id,
                    parent_id=parent_id,
                    token_hash=token_hash,
                    expires_at=datetime.now(UTC)
                    + timedelta(seconds=settings.refresh_token_ttl_seconds),
                )
            )
        access, _ = issue_access_token(
            settings,
            user_id=user_id,
            tenant_id=tenant_id,
            session_id=family_id,
            issued_at=issued_at,
            token_id=token_id,
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=settings.access_token_ttl_seconds,
            session_id=family_id,
        )

    async def revoke_family(self, session: AsyncSession, tenant_id: UUID, family_id: UUID) -> int:
        return await RefreshTokenRepository(session).revoke_family(
            tenant_id, family_id, datetime.now(UTC)
        )

    async def revoke_user(self, session: AsyncSession, tenant_id: UUID, user_id: UUID) -> int:
        """Revoke every refresh family of the user. Access tokens already out
        are voided by `users.tokens_valid_after`, which the caller sets."""
        return await RefreshTokenRepository(session).revoke_user(
            tenant_id, user_id, datetime.now(UTC)
        )


session_service = SessionService()
