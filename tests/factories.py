"""Factories: tenants with users of each system role, API keys, and the
headers each identity sends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from backend.kit.db import Database, system_scope
from backend.kit.security.jwt import issue_access_token
from backend.roles.service import role_service
from backend.settings import Settings
from backend.tenants.service import tenant_service
from backend.users.models import User
from backend.users.service import new_password_hash, user_service

PASSWORD = "correct horse battery staple"


@dataclass
class TenantFixture:
    id: uuid.UUID
    slug: str
    users: dict[str, User] = field(default_factory=dict)  # by role name

    @property
    def owner(self) -> User:
        return self.users["owner"]


async def _password_hash(app: Any) -> str:
    """`PASSWORD` hashed as the app would (each user made here gets one)."""
    settings: Settings = app.state.settings
    return await new_password_hash(settings, PASSWORD, None)


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.test"


async def make_tenant(
    app: Any,
    name: str = "Tenant",
    *,
    roles: tuple[str, ...] = ("owner",),
    superadmin: bool = False,
) -> TenantFixture:
    """A tenant with one user per role in `roles` (the first `owner` created
    with the tenant), committed for real."""
    database: Database = app.state.db
    password_hash = await _password_hash(app)
    with system_scope("tests.factories"):
        async with database.transaction() as session:
            provisioned = await tenant_service.provision(
                session,
                name=f"{name} {uuid.uuid4().hex[:6]}",
                owner_email=unique_email("owner"),
                owner_password_hash=password_hash,
                owner_is_superadmin=superadmin,
            )
            tenant = TenantFixture(id=provisioned.tenant.id, slug=provisioned.tenant.slug)
            tenant.users["owner"] = provisioned.owner
            for role_name in roles:
                if role_name in tenant.users:
                    continue
                found = await role_service.roles_by_names(session, tenant.id, [role_name])
                tenant.users[role_name] = await user_service.create_user(
                    session,
                    tenant_id=tenant.id,
                    email=unique_email(role_name),
                    password_hash=password_hash,
                    roles=found,
                )
    return tenant


def bearer_headers(app: Any, user: User) -> dict[str, str]:
    """An access token for `user`, as the login route would issue it."""
    token, _ = issue_access_token(
        app.state.settings, user_id=user.id, tenant_id=user.tenant_id, session_id=uuid.uuid4()
    )
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ApiKeyFixture:
    id: uuid.UUID
    key: str
    tenant_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


async def make_api_key(
    app: Any,
    tenant_id: uuid.UUID,
    scopes: tuple[str, ...] | list[str] = (),
    *,
    rate_limit: str | None = None,
    expires_at: Any = None,
    revoked: bool = False,
    created_by: uuid.UUID | None = None,
) -> ApiKeyFixture:
    """An API key stored as the create route stores it (keyed hash only),
    made by `created_by` (default: the tenant's owner; a key follows its
    creator's permissions)."""
    from datetime import UTC, datetime

    from sqlalchemy import text as sql_text

    from backend.api_keys.models import ApiKey
    from backend.kit.db import tenant_scope
    from backend.kit.security.tokens import generate_api_key, keyed_hash

    settings: Settings = app.state.settings
    parts = generate_api_key()
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            if created_by is None:
                created_by = await session.scalar(
                    sql_text(
                        "SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id "
                        "WHERE r.tenant_id = :tenant_id AND r.name = 'owner' LIMIT 1"
                    ),
                    {"tenant_id": tenant_id},
                )
            row = ApiKey(
                tenant_id=tenant_id,
                name=f"key {parts.prefix}",
                prefix=parts.prefix,
                key_hash=keyed_hash(settings.api_key_pepper.get_secret_value(), parts.key),
                scopes=sorted(scopes),
                rate_limit=rate_limit,
                expires_at=expires_at,
                revoked_at=datetime.now(UTC) if revoked else None,
                created_by=created_by,
            )
            session.add(row)
            await session.flush()
    return ApiKeyFixture(id=row.id, key=parts.key, tenant_id=tenant_id)


async def login(client: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Tokens from `POST /auth/token` (asserts success)."""
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def auth(tokens: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of a token answer."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def run_sql(app: Any, sql: str, **params: Any) -> list[Any]:
    """Run SQL in a named system scope, as the app role (for state no route
    exposes, e.g. suspending a tenant); the rows, if it returns any."""
    from sqlalchemy import text

    with system_scope("tests.sql"):
        async with app.state.db.transaction() as session:
            result = await session.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []


async def make_user(
    app: Any,
    tenant_id: uuid.UUID,
    roles: tuple[str, ...] = ("member",),
    *,
    email: str | None = None,
    is_active: bool = True,
) -> User:
    """One more user of an existing tenant, with the named roles."""
    from backend.kit.db import tenant_scope

    password_hash = await _password_hash(app)
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            found = await role_service.roles_by_names(session, tenant_id, list(roles))
            assert len(found) == len(roles), f"unknown role among {roles}"
            return await user_service.create_user(
                session,
                tenant_id=tenant_id,
                email=email or unique_email("user"),
                password_hash=password_hash,
                roles=found,
                is_active=is_active,
            )


async def make_role(app: Any, tenant_id: uuid.UUID, name: str, permissions: list[str]) -> Any:
    """A custom role of the tenant."""
    from backend.kit.db import tenant_scope
    from backend.roles.models import Role

    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            role = Role(tenant_id=tenant_id, name=name, permissions=sorted(permissions))
            session.add(role)
            await session.flush()
            return role
