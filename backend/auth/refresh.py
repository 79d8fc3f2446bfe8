"""Refresh-token rotation with reuse detection.

The presented token is spent and its successor issued in the request's
transaction; a spent token presented again revokes its whole family (in a
transaction of its own, since the request's rolls back with the refusal).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import audit_service
from backend.auth.models import RefreshToken
from backend.auth.repository import PrincipalRepository, RefreshTokenRepository
from backend.auth.sessions import Successor, TokenPair, refresh_token_hash, session_service
from backend.kit.db import Database, scope, system_scope, tenant_scope
from backend.kit.errors import Unauthenticated
from backend.settings import Settings
from backend.tenants.models import TenantStatus

logger = logging.getLogger("dossier.auth")


class RefreshService:
    async def refresh(
        self, session: AsyncSession, database: Database, settings: Settings, token: str
    ) -> TokenPair:
        """Rotate: the presented token is spent and its successor issued. A
        spent token presented again revokes its whole family, unless it is the
        immediate predecessor of the family's unused head and was spent within
        `REFRESH_REUSE_GRACE_SECONDS` (parallel tabs): that gets the same pair
        as its first use (idempotent), never a second, independent session."""
        token_hash = refresh_token_hash(settings, token)
        with system_scope("auth.refresh"), tenant_scope(None):
            async with database.transaction() as lookup:
                repository = RefreshTokenRepository(lookup)
                row = await repository.by_hash(token_hash)
                spent_child = await repository.has_used_child(row) if row else False
        now = datetime.now(UTC)
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise Unauthenticated("Invalid or expired refresh token")
        if row.used_at is not None and not self._in_grace(settings, row, spent_child, now):
            await self._reuse_detected(database, row)
            raise Unauthenticated("Refresh token already used; the session has been revoked")
        async with scope(session, row.tenant_id):
            await self._ensure_user_may_refresh(session, row)
            # Under the row lock: a concurrent refresh with the same token (or
            # a revocation) is seen here, not missed.
            used_at = await RefreshTokenRepository(session).spend(row, now)
            if used_at is None:
                raise Unauthenticated("Invalid or expired refresh token")
            if used_at != now and now - used_at > timedelta(
                seconds=settings.refresh_reuse_grace_seconds
            ):
                raise Unauthenticated("Refresh token already used")
            return await session_service.open(
                session,
                settings,
                tenant_id=row.tenant_id,
                user_id=row.user_id,
                family_id=row.family_id,
                parent_id=row.id,
                successor_of=Successor(token, used_at),
            )

    @staticmethod
    def _in_grace(settings: Settings, row: RefreshToken, spent_child: bool, now: datetime) -> bool:
        assert row.used_at is not None
        window = timedelta(seconds=settings.refresh_reuse_grace_seconds)
        return not spent_child and now - row.used_at <= window

    async def _ensure_user_may_refresh(self, session: AsyncSession, row: RefreshToken) -> None:
        state = await PrincipalRepository(session).user_principal(row.tenant_id, row.user_id)
        if state is None or not state["is_active"] or state["tenant_status"] != TenantStatus.ACTIVE:
            raise Unauthenticated("Invalid or expired refresh token")
        valid_after = state["tokens_valid_after"]
        if valid_after is not None and row.created_at < valid_after:
            raise Unauthenticated("Invalid or expired refresh token")

    async def _reuse_detected(self, database: Database, row: RefreshToken) -> None:
        logger.warning(
            "refresh token reuse detected: session revoked",
            extra={
                "tenant_id": str(row.tenant_id),
                "user_id": str(row.user_id),
                "session_id": str(row.family_id),
            },
        )
        with tenant_scope(row.tenant_id):
            async with database.transaction() as revoke:
                revoked = await session_service.revoke_family(revoke, row.tenant_id, row.family_id)
                if revoked:
                    await audit_service.record(
                        revoke,
                        None,
                        "auth.session_revoked",
                        "session",
                        row.family_id,
                        {"reason": "refresh_token_reuse", "user_id": str(row.user_id)},
                    )


refresh_service = RefreshService()
