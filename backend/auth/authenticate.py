"""Turning a credential into a `Principal` (or a 401)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import RowMapping

from backend.auth.cache import CachedPrincipal, PrincipalCache, api_key_key, user_key
from backend.auth.epochs import epoch_key
from backend.auth.principal import Principal, PrincipalKind
from backend.auth.repository import PrincipalRepository
from backend.auth.revocation import RevocationUnavailable, is_token_revoked, revocation_key
from backend.kit.db import Database, system_scope, tenant_scope
from backend.kit.errors import Unauthenticated
from backend.kit.ratelimit import RateLimitBackend
from backend.kit.security.jwt import AccessClaims, InvalidToken, decode_access_token
from backend.kit.security.tokens import hashes_match, keyed_hash, parse_api_key
from backend.settings import RateLimit, Settings
from backend.tenants.models import TenantStatus
from backend.tenants.plans import capped_rate_limit, tenant_rate_limit

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


def _redis_down() -> None:
    logger.warning("token denylist unavailable; revocation checked in PostgreSQL")


async def authenticate_credential(
    state: Any,
    bearer: str | None,
    api_key: str | None,
    *,
    limiter: RateLimitBackend | None = None,
    cache: PrincipalCache | None = None,
) -> Principal:
    """The principal of a bearer token or an API key (exactly one), with the
    app's database, Redis and settings (`state`: `app.state`)."""
    if bearer and api_key:
        raise Unauthenticated("Send either a bearer token or an API key, not both")
    settings: Settings = state.settings
    if bearer:
        claims = decode_bearer(settings, bearer)
        with tenant_scope(claims.tenant_id):
            return await authenticate_bearer(
                state.db, state.redis, settings, claims, limiter=limiter, cache=cache
            )
    if api_key is None:
        raise Unauthenticated("Not authenticated")
    return await authenticate_api_key(
        state.db, state.redis, settings, api_key, limiter=limiter, cache=cache
    )


async def authenticate_bearer(
    database: Database,
    redis: Redis,
    settings: Settings,
    claims: AccessClaims,
    *,
    limiter: RateLimitBackend | None = None,
    cache: PrincipalCache | None = None,
) -> Principal:
    """Must run inside `tenant_scope(claims.tenant_id)`. The rows, when they
    are needed, are read in a transaction of their own.

    With `limiter`, the call is also counted in the API-wide rate limit, in
    the same Redis round trip as the denylist check (`api_wait_ms`); with
    `cache` too, that round trip also says whether the principal cached for
    the user is current, and then no query is needed."""
    if limiter is None or limiter.paused:
        try:
            revoked = await is_token_revoked(redis, settings.redis_key_prefix, claims.token_id)
        except RevocationUnavailable:
            _redis_down()
            return await _user_from_database(database, settings, claims, check_session=True)
        if revoked:
            raise Unauthenticated("Token has been revoked")
        return await _user_from_database(database, settings, claims)
    key = user_key(claims.tenant_id, claims.subject)
    entry = cache.get(key) if cache is not None else None
    identifier = f"user:{claims.subject}"
    try:
        hit = await limiter.hit_unless_revoked(
            revocation_key(settings.redis_key_prefix, claims.token_id),
            epoch_key(settings.redis_key_prefix, claims.tenant_id),
            entry.version if entry is not None else None,
            "api",
            identifier,
            api_limit(settings, entry.principal if entry else None),
        )
    except (RedisError, OSError):
        if cache is not None:
            cache.clear()  # an epoch may have changed unseen meanwhile
        # Redis is a cache in front of PostgreSQL, which has the last word on
        # revocation (the session a token's `sid` names, `tokens_valid_after`);
        # rate limiting fails open meanwhile.
        _redis_down()
        return await _user_from_database(database, settings, claims, check_session=True)
    if hit is None:
        raise Unauthenticated("Token has been revoked")
    if hit.current and entry is not None:
        _check_issued_after(claims, entry.tokens_valid_after)
        return replace(
            entry.principal,
            session_id=claims.session_id,
            token_id=claims.token_id,
            token_expires_at=claims.expires_at,
            api_wait_ms=hit.wait_ms,
        )
    # Not cached, or cached at another epoch: the rows, read after the epoch.
    principal = await _user_from_database(database, settings, claims)
    if cache is not None:
        cache.put(
            key,
            CachedPrincipal(
                version=hit.version,
                tenant_id=claims.tenant_id,
                principal=replace(principal, session_id=None, token_id=None, token_expires_at=None),
                tokens_valid_after=_timestamp(principal.profile["tokens_valid_after"])
                if principal.profile is not None
                else None,
            ),
        )
    limit = api_limit(settings, principal)
    return replace(principal, api_wait_ms=await limiter.hit("api", identifier, limit))


def api_limit(settings: Settings, principal: Principal | None) -> RateLimit:
    """The principal's API-wide limit: its own (key or plan tier), else the default."""
    return (principal.rate_limit if principal else None) or settings.rate_limit_default


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _check_issued_after(claims: AccessClaims, valid_after: float | None) -> None:
    if valid_after is not None and claims.issued_at < valid_after:
        raise Unauthenticated("Token has been revoked")


async def _user_from_database(
    database: Database, settings: Settings, claims: AccessClaims, *, check_session: bool = False
) -> Principal:
    """The user's principal from PostgreSQL; with `check_session` (when the
    Redis denylist cannot answer), also refused when the token's session
    was revoked there."""
    async with database.transaction() as session:
        repository = PrincipalRepository(session)
        row = await repository.user_principal(claims.tenant_id, claims.subject)
        if (
            check_session
            and row is not None
            and await repository.session_revoked(claims.tenant_id, claims.session_id)
        ):
            raise Unauthenticated("Token has been revoked")
    if row is None or not row["is_active"] or row["tenant_status"] != TenantStatus.ACTIVE:
        raise Unauthenticated("Invalid or expired token")
    _check_issued_after(claims, _timestamp(row["tokens_valid_after"]))
    return _user_principal(settings, claims, row)


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
    cache: PrincipalCache | None = None,
) -> Principal:
    """Keys are looked up by their public prefix across tenants (a named system
    scope), then checked by constant-time comparison of their keyed hash.

    With `limiter`, the call is also counted in the API-wide rate limit, in
    the same Redis round trip as the "last used" marker (`api_wait_ms`); with
    `cache` too, that round trip also says whether the key cached under the
    prefix is current, and then no query is needed."""
    prefix = parse_api_key(key)
    if prefix is None:
        raise Unauthenticated("Invalid API key")
    digest = keyed_hash(settings.api_key_pepper.get_secret_value(), key)
    if limiter is None or limiter.paused:
        cache = None
    entry = cache.get(api_key_key(prefix)) if cache is not None else None
    version = None
    if cache is not None and entry is not None:
        # A prefix's hash never changes: a wrong secret needs no query.
        if not hashes_match(entry.key_hash or "", digest):
            raise Unauthenticated("Invalid API key")
        assert limiter is not None
        principal = entry.principal
        try:
            hit = await limiter.hit_and_mark_if_current(
                _last_used_marker(settings, str(principal.id)),
                LAST_USED_RESOLUTION_SECONDS,
                epoch_key(settings.redis_key_prefix, entry.tenant_id),
                entry.version,
                "api",
                api_bucket_identifier(principal),
                api_limit(settings, principal),
            )
        except (RedisError, OSError):
            cache.clear()  # not trusted without its epoch: the database decides
        else:
            if hit.current:
                if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
                    raise Unauthenticated("API key revoked or expired")
                if hit.first_use:
                    await _touch(database, principal.id)
                return replace(principal, api_wait_ms=hit.wait_ms)
            version = hit.version
    principal, row = await _api_key_from_database(
        database, redis, settings, prefix, digest, limiter=limiter
    )
    if cache is not None:
        # Without a version (the tenant was unknown before the query), the
        # entry only tells the next call which epoch to read first.
        cache.put(
            api_key_key(prefix),
            CachedPrincipal(
                version=version,
                tenant_id=row["tenant_id"],
                principal=replace(principal, api_wait_ms=None),
                key_hash=row["key_hash"],
                expires_at=row["expires_at"],
            ),
        )
    return principal


async def _touch(database: Database, key_id: UUID) -> None:
    with system_scope("auth.api_key_lookup"):
        async with database.transaction() as session:
            await PrincipalRepository(session).touch_api_key(key_id)


async def _api_key_from_database(
    database: Database,
    redis: Redis,
    settings: Settings,
    prefix: str,
    digest: str,
    *,
    limiter: RateLimitBackend | None,
) -> tuple[Principal, RowMapping]:
    with system_scope("auth.api_key_lookup"):
        async with database.transaction() as session:
            repository = PrincipalRepository(session)
            row = await repository.api_key_by_prefix(prefix)
            expected = row["key_hash"] if row else keyed_hash("", prefix)
            if row is None or not hashes_match(expected, digest):
                raise Unauthenticated("Invalid API key")
            now = datetime.now(UTC)
            if row["revoked_at"] is not None or (
                row["expires_at"] is not None and row["expires_at"] <= now
            ):
                raise Unauthenticated("API key revoked or expired")
            if row["tenant_status"] != TenantStatus.ACTIVE:
                raise Unauthenticated("Tenant is suspended")
            if not row["creator_active"]:
                raise Unauthenticated("The API key's creator is no longer active; re-issue it")
            principal = Principal(
                kind=PrincipalKind.API_KEY,
                id=row["id"],
                tenant_id=row["tenant_id"],
                permissions=frozenset(row["scopes"]) & frozenset(row["creator_permissions"]),
                rate_limit=capped_rate_limit(
                    RateLimit.parse(row["rate_limit"]) if row["rate_limit"] else None,
                    tenant_rate_limit(settings, row["tenant_plan"], row["tenant_limits"]),
                ),
            )
            if limiter is not None:
                first_use, wait = await limiter.hit_and_mark(
                    _last_used_marker(settings, str(row["id"])),
                    LAST_USED_RESOLUTION_SECONDS,
                    "api",
                    api_bucket_identifier(principal),
                    api_limit(settings, principal),
                )
                principal = replace(principal, api_wait_ms=wait)
            else:
                first_use = await _first_use_this_minute(redis, settings, str(row["id"]))
            if first_use:
                await repository.touch_api_key(row["id"])
    return principal, row


def _last_used_marker(settings: Settings, key_id: str) -> str:
    return f"{settings.redis_key_prefix}:api-key-used:{key_id}"


async def _first_use_this_minute(redis: Redis, settings: Settings, key_id: str) -> bool:
    """`last_used_at` is written at most once a minute per key, not per request."""
    try:
        marker = _last_used_marker(settings, key_id)
        return bool(await redis.set(marker, "1", nx=True, ex=LAST_USED_RESOLUTION_SECONDS))
    except (RedisError, OSError):
        return False
