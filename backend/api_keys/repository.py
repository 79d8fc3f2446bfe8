"""SQL of API keys."""

from __future__ import annotations

from sqlalchemy import func, select

from backend.api_keys.models import ApiKey
from backend.kit.repository import Repository


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey
    resource_name = "API key"

    async def count_active(self) -> int:
        """Keys not revoked, in the current tenant (all tenants in a system scope)."""
        stmt = self._tenant_filter(select(func.count()).select_from(ApiKey)).where(
            ApiKey.revoked_at.is_(None)
        )
        return int(await self.session.scalar(stmt) or 0)
