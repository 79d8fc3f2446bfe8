"""Turning a credential into a `Principal` (or a 401)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.principal import Principal, PrincipalKind
from backend.auth.repository import PrincipalRepository
from backend.auth.revocation import RevocationUnavailable, is_token_revoked, revocation_key
from backend.kit.db import Database, system_scope
from backend.kit.errors import Unauthenticated
from backend.kit.ratelimit import RateLimitBackend
from backend.kit.security.jwt import AccessClaims, InvalidToken, decode_access_token
from backend.kit.security.tokens import hashes_match, keyed_hash, parse_api_key
from backend.settings import RateLimit, Settings
from backend.tenants.models import TenantStatus
from backend.tenants.plans import tenant_rate_limit

logger = logging.getLogger("dossier.auth")

LAST_USED_RESOLUTION_SECONDS = 60


def decode_bearer(settings: Settings, token: str) -> AccessClaims:
    try:
        return decode_access_token(settings, token)
    except InvalidToken:
        raise Unauthenticated("Invalid or expired token") from None


def api_bucket_identifier(principal: Principal) -> str:
    """The principal's bucket in the API-wide rate limit."""
    return f"{'user' if principal.is_user else 'key'}:{principal.id}"


def _unavailable() -> Unauthenticated:
    logger.warning("token revocation check unavailable; refusing token")
    return Unauthenticated("Token revocation cannot be checked right now")


async def authenticate_bearer(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    claims: AccessClaims,
    *,
    limiter: RateLimitBackend | None = None,
) -> Principal:
    """Must run inside `tenant_scope(claims.tenant_id)`.

    With `limiter`, the call is also counted in the API-wide rate limit, in
    the same Redis round trip as the denylist check (`api_wait_ms`)."""
    row = await PrincipalRepository(session).user_principal(claims.tenant_id, claims.subject)
    if row is None or not row["is_active"] or row["tenant_status"] != TenantStatus.ACTIVE:
        raise Unauthenticated("Invalid or expired token")
    valid_after = row["tokens_valid_after"]
    if valid_after is not None and claims.issued_at < valid_after.timestamp():
        raise Unauthenticated("Token has been revoked")
    principal = _user_principal(settings, claims, row)
    if limiter is not None and not limiter.paused:
        try:
            wait = await limiter.hit_unless_revoked(
                revocation_key(settings.redis_key_prefix, claims.token_id),
                "api",
                api_bucket_identifier(principal),
                principal.rate_limit or settings.rate_limit_default,
            )
        except (RedisError, OSError):
            raise _unavailable() from None
        if wait is None:
            raise Unauthenticated("Token has been revoked")
        return replace(principal, api_wait_ms=wait)
    try:
        revoked = await is_token_revoked(redis, settings.redis_key_prefix, claims.token_id)
    except RevocationUnavailable:
        raise _unavailable() from None
    if revoked:
        raise Unauthenticated("Token has been revoked")
    return principal


def _user_principal(settings: Settings, claims: AccessClaims, row: RowMapping) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        id=claims.subject,
        tenant_id=claims.tenant_id,
        permissions=frozenset(row["permissions"]),
        is_superadmin=bool(row["is_superadmin"]),
        session_id=claims.session_id,
        token_id=claims.token_id,
        token_expires_at=claims.expires_at,
        rate_limit=tenant_rate_limit(settings, row["tenant_plan"], row["tenant_limits"]),
        profile=row,
    )


async def authenticate_api_key(
    database: Database,
    redis: Redis,
    settings: Settings,
    key: str,
    *,
    limiter: RateLimitBackend | None = None,
) -> Principal:
    """Keys are looked up by their public prefix across tenants (a named system
    scope), then checked by constant-time comparison of their keyed hash.

    With `limiter`, the call is also counted in the API-wide rate limit, in
    the same Redis round trip as the "last used" marker (`api_wait_ms`)."""
    prefix = parse_api_key(key)
    if prefix is None:
        raise Unauthenticated("Invalid API key")
    with system_scope("auth.api_key_lookup"):
        async with database.transaction() as session:
            repository = PrincipalRepository(session)
            row = await repository.api_key_by_prefix(prefix)
            expected = row["key_hash"] if row else keyed_hash("", prefix)
            digest = keyed_hash(settings.api_key_pepper.get_secret_value(), key)
            if row is None or not hashes_match(expected, digest):
                raise Unauthenticated("Invalid API key")
            now = datetime.now(UTC)
            if row["revoked_at"] is not None or (
                row["expires_at"] is not None and row["expires_at"] <= now
            ):
                raise Unauthenticated("API key revoked or expired")
            if row["tenant_status"] != TenantStatus.ACTIVE:
                raise Unauthenticated("Tenant is suspended")
            principal = Principal(
                kind=PrincipalKind.API_KEY,
                id=row["id"],
                tenant_id=row["tenant_id"],
                permissions=frozenset(row["scopes"]),
                rate_limit=(
                    RateLimit.parse(row["rate_limit"])
                    if row["rate_limit"]
                    else tenant_rate_limit(settings, row["tenant_plan"], row["tenant_limits"])
                ),
            )
            if limiter is not None:
                first_use, wait = await limiter.hit_and_mark(
                    _last_used_marker(settings, str(row["id"])),
                    LAST_USED_RESOLUTION_SECONDS,
                    "api",
                    api_bucket_identifier(principal),
                    principal.rate_limit or settings.rate_limit_default,
                )
                principal = replace(principal, api_wait_ms=wait)
            else:
                first_use = await _first_use_this_minute(redis, settings, str(row["id"]))
            if first_use:
                await repository.touch_api_key(row["id"])
    return principal


def _last_used_marker(settings: Settings, key_id: str) -> str:
    return f"{settings.redis_key_prefix}:api-key-used:{key_id}"


async def _first_use_this_minute(redis: Redis, settings: Settings, key_id: str) -> bool:
    """`last_used_at` is written at most once a minute per key, not per request."""
    try:
        marker = _last_used_marker(settings, key_id)
        return bool(await redis.set(marker, "1", nx=True, ex=LAST_USED_RESOLUTION_SECONDS))
    except (RedisError, OSError):
        return False
