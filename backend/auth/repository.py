"""SQL of the auth domain: principal lookups (lean, one round trip each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.auth.models import OneTimePurpose, OneTimeToken, RefreshToken

# The principal and, in the same row, the profile `/auth/me` answers with
# (kept with the principal, cached or not): `/auth/me` runs no query.
_USER_PRINCIPAL = text(
    """
    SELECT u.id, u.email, u.full_name, u.is_active, u.is_superadmin, u.created_at,
           u.updated_at, u.tokens_valid_after, t.id AS tenant_id, t.name AS tenant_name,
           t.slug AS tenant_slug, t.status AS tenant_status, t.plan AS tenant_plan,
           t.limits AS tenant_limits,
           COALESCE((
               SELECT array_agg(DISTINCT permission)
               FROM user_roles ur
               JOIN roles r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id
                           AND r.deleted_at IS NULL,
                    unnest(r.permissions) AS permission
               WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id
           ), '{}') AS permissions,
           COALESCE((
               SELECT array_agg(r.name ORDER BY r.name)
               FROM user_roles ur
               JOIN roles r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id
                           AND r.deleted_at IS NULL
               WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id
           ), '{}') AS roles
    FROM users u
    JOIN tenants t ON t.id = u.tenant_id AND t.deleted_at IS NULL
    WHERE u.tenant_id = :tenant_id AND u.id = :user_id AND u.deleted_at IS NULL
    """
)

_API_KEY_BY_PREFIX = text(
    """
    SELECT k.id, k.tenant_id, k.key_hash, k.scopes, k.rate_limit, k.expires_at,
           k.revoked_at, t.status AS tenant_status, t.plan AS tenant_plan,
           t.limits AS tenant_limits,
           COALESCE(u.is_active, false) AS creator_active,
           COALESCE((
               SELECT array_agg(DISTINCT permission)
               FROM user_roles ur
               JOIN roles r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id
                           AND r.deleted_at IS NULL,
                    unnest(r.permissions) AS permission
               WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id
           ), '{}') AS creator_permissions
    FROM api_keys k
    JOIN tenants t ON t.id = k.tenant_id AND t.deleted_at IS NULL
    -- A key follows its creator: their current permissions bound its scopes,
    -- and it stops working once they are deactivated or deleted.
    LEFT JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.created_by
                     AND u.deleted_at IS NULL
    WHERE k.prefix = :prefix
    """
)

# What a user, or an API key (its scopes within its creator's), may do now;
# no row when the subject is gone, inactive, revoked or its creator is.
_CURRENT_PERMISSIONS = text(
    """
    WITH creator AS (
        SELECT u.id, u.tenant_id
        FROM users u
        WHERE u.tenant_id = :tenant_id AND u.deleted_at IS NULL AND u.is_active
          AND u.id IN (
              :subject_id,
              (SELECT k.created_by FROM api_keys k
               WHERE k.tenant_id = :tenant_id AND k.id = :subject_id)
          )
    ), granted AS (
        SELECT c.id AS user_id,
               COALESCE((
                   SELECT array_agg(DISTINCT permission)
                   FROM user_roles ur
                   JOIN roles r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id
                               AND r.deleted_at IS NULL,
                        unnest(r.permissions) AS permission
                   WHERE ur.tenant_id = c.tenant_id AND ur.user_id = c.id
               ), '{}') AS permissions
        FROM creator c
    )
    SELECT g.permissions FROM granted g WHERE g.user_id = :subject_id
    UNION ALL
    SELECT ARRAY(SELECT unnest(k.scopes) INTERSECT SELECT unnest(g.permissions))
    FROM api_keys k JOIN granted g ON g.user_id = k.created_by
    WHERE k.tenant_id = :tenant_id AND k.id = :subject_id AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
    """
)

_TOUCH_API_KEY = text("UPDATE api_keys SET last_used_at = now() WHERE id = :id")


class PrincipalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_principal(self, tenant_id: UUID, user_id: UUID) -> RowMapping | None:
        params: dict[str, Any] = {"tenant_id": tenant_id, "user_id": user_id}
        # On the session's connection: plain SQL needs none of the ORM's
        # execute machinery, which costs more than the query here.
        connection = await self.session.connection()
        result = await connection.execute(_USER_PRINCIPAL, params)
        return result.mappings().one_or_none()

    async def session_revoked(self, tenant_id: UUID, session_id: UUID) -> bool:
        """Whether the refresh family a token's `sid` names was revoked (at
        logout, reuse detection, password change): PostgreSQL's word on it."""
        stmt = select(
            exists().where(
                RefreshToken.tenant_id == tenant_id,
                RefreshToken.family_id == session_id,
                RefreshToken.revoked_at.is_not(None),
            )
        )
        return bool(await self.session.scalar(stmt))

    async def api_key_by_prefix(self, prefix: str) -> RowMapping | None:
        result = await self.session.execute(_API_KEY_BY_PREFIX, {"prefix": prefix})
        return result.mappings().one_or_none()

    async def current_permissions(self, tenant_id: UUID, subject_id: UUID) -> frozenset[str]:
        """What the user or API key `subject_id` may do now (nothing when it
        is gone, inactive or revoked)."""
        params = {"tenant_id": tenant_id, "subject_id": subject_id}
        rows = (await self.session.execute(_CURRENT_PERMISSIONS, params)).scalars()
        return frozenset(permission for row in rows for permission in row)

    async def touch_api_key(self, key_id: UUID) -> None:
        await self.session.execute(_TOUCH_API_KEY, {"id": key_id})


_LOGIN_CANDIDATE = text(
    """
    SELECT u.id, u.tenant_id, u.email, u.password_hash, u.is_active,
           t.status AS tenant_status, t.deleted_at IS NOT NULL AS tenant_deleted
    FROM users u
    JOIN tenants t ON t.id = u.tenant_id
    WHERE lower(u.email) = :email AND u.deleted_at IS NULL
    """
)


class AuthRepository:
    """Lookups that work before the tenant is known (run in a system scope)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def login_candidate(self, email: str) -> RowMapping | None:
        """The live user with this (normalised) email, with their tenant's state."""
        result = await self.session.execute(_LOGIN_CANDIDATE, {"email": email})
        return result.mappings().one_or_none()


class RefreshTokenRepository:
    """Refresh tokens (hashed), one rotation chain per session (`family_id`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: RefreshToken) -> RefreshToken:
        self.session.add(row)
        await self.session.flush()
        return row

    async def by_hash(self, token_hash: str) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def has_used_child(self, row: RefreshToken) -> bool:
        child = aliased(RefreshToken)
        stmt = select(
            exists().where(
                child.tenant_id == row.tenant_id,
                child.family_id == row.family_id,
                child.parent_id == row.id,
                child.used_at.is_not(None),
            )
        )
        return bool(await self.session.scalar(stmt))

    async def spend(self, row: RefreshToken, now: datetime) -> datetime | None:
        """Mark the token used (keeping an earlier use time) under its row lock.
        Returns when it was first used (`now` if by this call), or None when its
        family has been revoked meanwhile."""
        stmt = (
            update(RefreshToken)
            .where(
                RefreshToken.tenant_id == row.tenant_id,
                RefreshToken.id == row.id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=func.coalesce(RefreshToken.used_at, now))
            .returning(RefreshToken.used_at)
            .execution_options(synchronize_session=False)
        )
        used_at: datetime | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return used_at

    async def revoke_family(self, tenant_id: UUID, family_id: UUID, now: datetime) -> int:
        stmt = (
            update(RefreshToken)
            .where(
                RefreshToken.tenant_id == tenant_id,
                RefreshToken.family_id == family_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def revoke_user(self, tenant_id: UUID, user_id: UUID, now: datetime) -> int:
        """Every session of the user."""
        stmt = update(RefreshToken).where(
            RefreshToken.tenant_id == tenant_id,
            RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None),
        )
        result = await self.session.execute(
            stmt.values(revoked_at=now).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class OneTimeTokenRepository:
    """Password-reset and invitation tokens (hashed, single use)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: OneTimeToken) -> OneTimeToken:
        self.session.add(row)
        await self.session.flush()
        return row

    async def by_hash(
        self, token_hash: str, purpose: OneTimePurpose, *, for_update: bool = False
    ) -> OneTimeToken | None:
        """`for_update`: locked, so that two requests cannot both use one token."""
        stmt = select(OneTimeToken).where(
            OneTimeToken.token_hash == token_hash, OneTimeToken.purpose == purpose
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def use_all(
        self, tenant_id: UUID, user_id: UUID, purpose: OneTimePurpose, now: datetime
    ) -> None:
        """Spend every outstanding token of this purpose: the newest link
        mailed is not the only one that stops working once one is used."""
        stmt = (
            update(OneTimeToken)
            .where(
                OneTimeToken.tenant_id == tenant_id,
                OneTimeToken.user_id == user_id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)
