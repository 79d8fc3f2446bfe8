"""The authentication dependencies every router uses: `CurrentPrincipal`,
`require(permission)` and `SuperAdmin`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from backend.auth.authenticate import authenticate_api_key, authenticate_bearer, decode_bearer
from backend.auth.principal import Principal
from backend.kit.db import reapply_scope, system_scope, tenant_scope
from backend.kit.deps import AppSettings, DbSession, RedisClient, get_database
from backend.kit.errors import PermissionDenied, Unauthenticated
from backend.kit.request_context import annotate_log

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_principal(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    redis: RedisClient,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> AsyncIterator[Principal]:
    """Resolve the caller and bind the rest of the request to its tenant."""
    if bearer and api_key:
        raise Unauthenticated("Send either a bearer token or an API key, not both")
    if bearer:
        claims = decode_bearer(settings, bearer)
        with tenant_scope(claims.tenant_id):
            principal = await authenticate_bearer(session, redis, settings, claims)
            _remember(request, principal)
            yield principal
    elif api_key:
        principal = await authenticate_api_key(get_database(request), redis, settings, api_key)
        with tenant_scope(principal.tenant_id):
            _remember(request, principal)
            yield principal
    else:
        raise Unauthenticated()


def _remember(request: Request, principal: Principal) -> None:
    request.state.principal = principal
    annotate_log(
        tenant_id=str(principal.tenant_id),
        principal=f"{principal.kind.value}:{principal.id}",
    )


# Function scope, like the session it uses: both end before the response is sent.
CurrentPrincipal = Annotated[Principal, Depends(get_principal, scope="function")]


def require(*permissions: str) -> Any:
    """`Annotated[Principal, require("documents:read")]`: 403 unless held."""

    async def check(principal: CurrentPrincipal) -> Principal:
        missing = [permission for permission in permissions if not principal.has(permission)]
        if missing:
            raise PermissionDenied(f"Missing permission: {', '.join(missing)}")
        return principal

    return Depends(check)


async def get_superadmin(
    principal: CurrentPrincipal, session: DbSession
) -> AsyncIterator[Principal]:
    """Platform admins only (never API keys); admin work is cross-tenant."""
    if not (principal.is_user and principal.is_superadmin):
        raise PermissionDenied("Platform administrators only")
    with system_scope("admin"):
        await reapply_scope(session)
        yield principal


SuperAdmin = Annotated[Principal, Depends(get_superadmin, scope="function")]
