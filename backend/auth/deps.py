"""The authentication dependencies every router uses: `CurrentPrincipal`,
`require(permission)` and `SuperAdmin`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from backend.auth.authenticate import authenticate_credential
from backend.auth.cache import get_cache
from backend.auth.principal import Principal
from backend.kit.db import scope, tenant_scope
from backend.kit.deps import DbSession, database_of
from backend.kit.errors import PermissionDenied, Unauthenticated
from backend.kit.ratelimit import get_backend
from backend.kit.request_context import annotate_log

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)

API_PREFIX = "/api/v1/"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The caller as the credentials on the request say: a principal, nobody
    (no credentials), or why the credentials were refused."""

    principal: Principal | None = None
    error: Unauthenticated | None = None


def _credentials(connection: HTTPConnection) -> tuple[str | None, str | None]:
    scheme, token = get_authorization_scheme_param(connection.headers.get("Authorization"))
    bearer = token if scheme.lower() == "bearer" and token else None
    return bearer, connection.headers.get("X-API-Key") or None


async def resolve_principal(connection: HTTPConnection) -> AsyncIterator[Resolution]:
    """Resolve the caller once per request and bind the rest of the request
    to its tenant. Refused credentials are not raised here but carried in the
    resolution: public routes (login, refresh) ignore them, `get_principal`
    raises them, and the rate limiter keys such calls by client IP.

    A credential cached in this process (`backend.auth.cache`) needs no
    query; otherwise its rows are read in a short transaction of their own,
    so that the request's session is opened only by the routes that query.

    WebSocket routes authenticate their own way (a `token` query parameter):
    nothing is resolved for them here, and no database work is done.
    """
    if connection.scope["type"] != "http":
        yield Resolution()
        return
    bearer, api_key = _credentials(connection)
    if not bearer and not api_key:
        yield Resolution()
        return
    try:
        principal = await _authenticate(connection, bearer, api_key)
    except Unauthenticated as exc:
        error = exc
    else:
        with tenant_scope(principal.tenant_id):
            _remember(connection, principal)
            yield Resolution(principal=principal)
        return
    yield Resolution(error=error)


async def _authenticate(
    connection: HTTPConnection, bearer: str | None, api_key: str | None
) -> Principal:
    # Under /api/v1 the call is counted in the API-wide limit along with the
    # credential's own Redis work (one round trip); `api_rate_limit` reads it.
    limiter = get_backend(connection) if _api_limited(connection) else None
    return await authenticate_credential(
        connection.app.state, bearer, api_key, limiter=limiter, cache=get_cache(connection)
    )


def _api_limited(connection: HTTPConnection) -> bool:
    """Whether the route carries the API-wide limit: every /api/v1 route does
    (`api_rate_limit` is a dependency of the whole `api_router`, and nothing
    else is mounted there). The request's path, not the route's: an included
    route's own `path` lacks the router prefixes."""
    path: str = connection.scope["path"]
    root: str = connection.scope.get("root_path", "")
    return path.removeprefix(root).startswith(API_PREFIX)


Resolved = Annotated[Resolution, Depends(resolve_principal, scope="function")]


async def get_principal(
    resolved: Resolved,
    # Declared for OpenAPI (the Authorize button); the values come from `resolved`.
    _bearer: Annotated[str | None, Depends(oauth2_scheme)],
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The authenticated caller, else 401."""
    return _authorised(resolved, ())


def _authorised(resolved: Resolution, permissions: tuple[str, ...]) -> Principal:
    """The caller holding every one of `permissions`: else 401, or 403."""
    if resolved.error is not None:
        raise resolved.error
    if resolved.principal is None:
        raise Unauthenticated()
    return _holding(resolved.principal, permissions)


def _holding(principal: Principal, permissions: tuple[str, ...]) -> Principal:
    missing = [permission for permission in permissions if not principal.has(permission)]
    if missing:
        raise PermissionDenied(f"Missing permission: {', '.join(missing)}")
    return principal


def _remember(connection: HTTPConnection, principal: Principal) -> None:
    connection.state.principal = principal
    annotate_log(
        tenant_id=str(principal.tenant_id),
        principal=f"{principal.kind.value}:{principal.id}",
    )


# Function scope, like the session it uses: both end before the response is sent.
CurrentPrincipal = Annotated[Principal, Depends(get_principal, scope="function")]


def require(*permissions: str) -> Any:
    """`Annotated[Principal, require("documents:read")]`: 403 unless held."""

    async def check(principal: CurrentPrincipal) -> Principal:
        return _holding(principal, permissions)

    return Depends(check)


@dataclass(frozen=True, slots=True)
class ScopedRead:
    """What a hot read needs, from one dependency: the caller, holding the
    route's permissions, and a Core connection whose transaction runs in the
    caller's tenant scope (`Database.read`: no ORM session)."""

    principal: Principal
    connection: AsyncConnection


def scoped_read(*permissions: str) -> Any:
    """`Annotated[ScopedRead, scoped_read("users:read")]`: 401 without
    credentials, 403 unless every permission is held, else the caller and a
    tenant-scoped connection, committed before the response is sent."""

    async def open_read(
        resolved: Resolved,
        request: HTTPConnection,
        # Declared for OpenAPI (the Authorize button); the values come from `resolved`.
        _bearer: Annotated[str | None, Depends(oauth2_scheme)],
        _api_key: Annotated[str | None, Depends(api_key_scheme)],
    ) -> AsyncIterator[ScopedRead]:
        principal = _authorised(resolved, permissions)
        async with database_of(request).read() as connection:
            yield ScopedRead(principal, connection)

    return Depends(open_read, scope="function")


async def get_superadmin(
    principal: CurrentPrincipal, session: DbSession
) -> AsyncIterator[Principal]:
    """Platform admins only (never API keys); admin work is cross-tenant."""
    if not (principal.is_user and principal.is_superadmin):
        raise PermissionDenied("Platform administrators only")
    # Cross-tenant: out of the admin's own tenant, into the named system scope.
    async with scope(session, None, system="admin"):
        yield principal


SuperAdmin = Annotated[Principal, Depends(get_superadmin, scope="function")]
