"""Business rules of API keys: who may mint which scopes, shown-once keys,
soft revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.api_keys.models import ApiKey
from backend.api_keys.repository import ApiKeyRepository
from backend.api_keys.schemas import ApiKeyCreate
from backend.audit.service import audit_service
from backend.auth.principal import Principal
from backend.kit.errors import PermissionDenied, ValidationFailed
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.security.tokens import generate_api_key, keyed_hash
from backend.settings import RateLimit, Settings


@dataclass(frozen=True, slots=True)
class CreatedKey:
    row: ApiKey
    key: str


class ApiKeyService:
    async def list_keys(
        self, session: AsyncSession, query: ListQuery, *, revoked: bool | None = None
    ) -> PageResult[ApiKey]:
        repository = ApiKeyRepository(session)
        stmt = repository.select()
        if revoked is True:
            stmt = stmt.where(ApiKey.revoked_at.is_not(None))
        elif revoked is False:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        return await repository.paginate(stmt, query)

    async def get_key(self, session: AsyncSession, key_id: UUID) -> ApiKey:
        return await ApiKeyRepository(session).get_or_raise(key_id)

    async def create_key(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: ApiKeyCreate
    ) -> CreatedKey:
        if not principal.is_user:
            raise PermissionDenied("API keys are created by users, not by other keys")
        scopes = sorted({str(scope) for scope in data.scopes})
        beyond = [scope for scope in scopes if not principal.has(scope)]
        if beyond:
            raise PermissionDenied(f"Cannot grant scopes you do not hold: {', '.join(beyond)}")
        if data.rate_limit is not None:
            tenant_limit = principal.rate_limit or settings.rate_limit_default
            if RateLimit.parse(data.rate_limit).exceeds(tenant_limit):
                message = f"at most the tenant's limit {tenant_limit}"
                raise ValidationFailed(
                    message,
                    errors=[{"loc": ["body", "rate_limit"], "msg": message, "type": "value_error"}],
                )
        parts = generate_api_key()
        row = await ApiKeyRepository(session).create(
            tenant_id=principal.tenant_id,
            name=data.name,
            prefix=parts.prefix,
            key_hash=keyed_hash(settings.api_key_pepper.get_secret_value(), parts.key),
            scopes=scopes,
            rate_limit=data.rate_limit,
            expires_at=data.expires_at,
            created_by=principal.id,
        )
        changes: dict[str, Any] = {
            "name": data.name,
            "prefix": parts.prefix,
            "scopes": scopes,
            "expires_at": data.expires_at.isoformat() if data.expires_at else None,
            "rate_limit": data.rate_limit,
        }
        await audit_service.record(
            session, principal, "api_key.created", "api_key", row.id, changes
        )
        return CreatedKey(row=row, key=parts.key)

    async def revoke_key(self, session: AsyncSession, principal: Principal, key_id: UUID) -> None:
        """Soft: the row stays (with `revoked_at`) for the audit trail; the key
        is refused from now on. Revoking a revoked key changes nothing."""
        repository = ApiKeyRepository(session)
        row = await repository.get_or_raise(key_id)
        if row.revoked_at is not None:
            return
        changes = await repository.update(row, {"revoked_at": datetime.now(UTC)})
        await audit_service.record(
            session, principal, "api_key.revoked", "api_key", row.id, changes
        )

    async def count_active(self, session: AsyncSession) -> int:
        return await ApiKeyRepository(session).count_active()


api_key_service = ApiKeyService()
