"""SQL of the auth domain: principal lookups (lean, one round trip each)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

_USER_PRINCIPAL = text(
    """
    SELECT u.is_active, u.is_superadmin, u.tokens_valid_after, t.status AS tenant_status,
           t.plan AS tenant_plan, t.limits AS tenant_limits,
           COALESCE((
               SELECT array_agg(DISTINCT permission)
               FROM user_roles ur
               JOIN roles r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id
                           AND r.deleted_at IS NULL,
                    unnest(r.permissions) AS permission
               WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id
           ), '{}') AS permissions
    FROM users u
    JOIN tenants t ON t.id = u.tenant_id AND t.deleted_at IS NULL
    WHERE u.tenant_id = :tenant_id AND u.id = :user_id AND u.deleted_at IS NULL
    """
)

_API_KEY_BY_PREFIX = text(
    """
    SELECT k.id, k.tenant_id, k.key_hash, k.scopes, k.rate_limit, k.expires_at,
           k.revoked_at, t.status AS tenant_status, t.plan AS tenant_plan,
           t.limits AS tenant_limits
    FROM api_keys k
    JOIN tenants t ON t.id = k.tenant_id AND t.deleted_at IS NULL
    WHERE k.prefix = :prefix
    """
)

_TOUCH_API_KEY = text("UPDATE api_keys SET last_used_at = now() WHERE id = :id")


class PrincipalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_principal(self, tenant_id: UUID, user_id: UUID) -> RowMapping | None:
        params: dict[str, Any] = {"tenant_id": tenant_id, "user_id": user_id}
        result = await self.session.execute(_USER_PRINCIPAL, params)
        return result.mappings().one_or_none()

    async def api_key_by_prefix(self, prefix: str) -> RowMapping | None:
        result = await self.session.execute(_API_KEY_BY_PREFIX, {"prefix": prefix})
        return result.mappings().one_or_none()

    async def touch_api_key(self, key_id: UUID) -> None:
        await self.session.execute(_TOUCH_API_KEY, {"id": key_id})
