"""Who may call what: every users, roles and session route against owner,
admin, member, viewer, an API key with every scope, one with none, an
anonymous caller and the owner of another tenant (whose view of this
tenant's resources is 404, never 403)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.roles.permissions import catalogue
from tests.factories import (
    PASSWORD,
    TenantFixture,
    bearer_headers,
    make_api_key,
    make_role,
    make_tenant,
    make_user,
    run_sql,
    unique_email,
)

IDENTITIES = ("owner", "admin", "member", "viewer", "key", "key_none", "anonymous", "other")

Target = Callable[[Any, TenantFixture], Awaitable[str]]


async def _user(app: Any, tenant: TenantFixture) -> str:
    return str((await make_user(app, tenant.id, ("member",))).id)


async def _deleted_user(app: Any, tenant: TenantFixture) -> str:
    user_id = await _user(app, tenant)
    await run_sql(app, "UPDATE users SET deleted_at = now() WHERE id = :id", id=user_id)
    return user_id


async def _role(app: Any, tenant: TenantFixture) -> str:
    return str((await make_role(app, tenant.id, unique_email("role")[:40], ["documents:read"])).id)


async def _deleted_role(app: Any, tenant: TenantFixture) -> str:
    role_id = await _role(app, tenant)
    await run_sql(app, "UPDATE roles SET deleted_at = now() WHERE id = :id", id=role_id)
    return role_id


def _new_user() -> dict[str, Any]:
    return {"email": unique_email("created"), "password": PASSWORD, "roles": ["viewer"]}


def _new_role() -> dict[str, Any]:
    return {"name": unique_email("r")[:40], "permissions": ["documents:read"]}


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # `{id}` is replaced by a fresh target's id
    allowed: int  # the success status
    target: Target | None = None
    body: Callable[[], dict[str, Any]] | None = None
    # Readers (member, viewer) may call it; else they get 403.
    readers: bool = False

    def expected(self, identity: str) -> int:
        if identity == "anonymous":
            return 401
        if identity == "key_none":
            return 403
        if identity == "other":
            return 404 if self.target else self.allowed
        if identity in ("member", "viewer") and not self.readers:
            return 403
        return self.allowed


CASES = {
    "users-list": Case("GET", "/api/v1/users", 200, readers=True),
    "users-create": Case("POST", "/api/v1/users", 201, body=_new_user),
    "users-invite": Case(
        "POST", "/api/v1/users/invitations", 201, body=lambda: {"email": unique_email("inv")}
    ),
    "users-get": Case("GET", "/api/v1/users/{id}", 200, target=_user, readers=True),
    "users-update": Case(
        "PATCH", "/api/v1/users/{id}", 200, target=_user, body=lambda: {"full_name": "N"}
    ),
    "users-delete": Case("DELETE", "/api/v1/users/{id}", 204, target=_user),
    "users-restore": Case("POST", "/api/v1/users/{id}/restore", 200, target=_deleted_user),
    "users-set-roles": Case(
        "PUT", "/api/v1/users/{id}/roles", 200, target=_user, body=lambda: {"roles": ["viewer"]}
    ),
    "permissions-list": Case("GET", "/api/v1/permissions", 200, readers=True),
    "roles-list": Case("GET", "/api/v1/roles", 200, readers=True),
    "roles-create": Case("POST", "/api/v1/roles", 201, body=_new_role),
    "roles-get": Case("GET", "/api/v1/roles/{id}", 200, target=_role, readers=True),
    "roles-update": Case(
        "PATCH", "/api/v1/roles/{id}", 200, target=_role, body=lambda: {"description": "d"}
    ),
    "roles-delete": Case("DELETE", "/api/v1/roles/{id}", 204, target=_role),
    "roles-restore": Case("POST", "/api/v1/roles/{id}/restore", 200, target=_deleted_role),
}


@pytest.fixture
async def identities(app: Any) -> tuple[TenantFixture, dict[str, dict[str, str]]]:
    tenant = await make_tenant(app, roles=("owner", "admin", "member", "viewer"))
    other = await make_tenant(app, roles=("owner",))
    full = await make_api_key(app, tenant.id, catalogue.names())
    none = await make_api_key(app, tenant.id, [])
    headers = {role: bearer_headers(app, user) for role, user in tenant.users.items()}
    headers.update(
        key=full.headers,
        key_none=none.headers,
        anonymous={},
        other=bearer_headers(app, other.owner),
    )
    return tenant, headers


@pytest.mark.parametrize("name", sorted(CASES))
async def test_route_permissions(
    client: httpx.AsyncClient,
    app: Any,
    identities: tuple[TenantFixture, dict[str, dict[str, str]]],
    name: str,
) -> None:
    case = CASES[name]
    tenant, headers = identities
    outcomes = {}
    for identity in IDENTITIES:
        path = case.path
        if case.target is not None:
            path = path.replace("{id}", await case.target(app, tenant))
        response = await client.request(
            case.method,
            path,
            headers=headers[identity],
            json=case.body() if case.body else None,
        )
        outcomes[identity] = response.status_code
        if response.status_code == 401:
            assert "www-authenticate" in response.headers
    assert outcomes == {identity: case.expected(identity) for identity in IDENTITIES}


SESSION_ROUTES = [
    ("GET", "/api/v1/auth/me", None, 200),
    ("POST", "/api/v1/auth/logout", None, 204),
    ("POST", "/api/v1/auth/logout-all", None, 204),
    (
        "POST",
        "/api/v1/auth/password",
        {"current_password": PASSWORD, "new_password": "another good passphrase"},
        200,
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), SESSION_ROUTES)
async def test_session_route_permissions(
    client: httpx.AsyncClient,
    app: Any,
    identities: tuple[TenantFixture, dict[str, dict[str, str]]],
    method: str,
    path: str,
    body: dict[str, str] | None,
    allowed: int,
) -> None:
    """Every signed-in user may use them; API keys have no session (403)."""
    _, headers = identities
    outcomes = {}
    for identity in IDENTITIES:
        response = await client.request(method, path, headers=headers[identity], json=body)
        outcomes[identity] = response.status_code
    expected = dict.fromkeys(IDENTITIES, allowed)
    expected.update(key=403, key_none=403, anonymous=401)
    assert outcomes == expected
