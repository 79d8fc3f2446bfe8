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
from backend.users.service import user_service

PASSWORD = "correct horse battery staple"


@dataclass
class TenantFixture:
    id: uuid.UUID
    slug: str
    users: dict[str, User] = field(default_factory=dict)  # by role name

    @property
    def owner(self) -> User:
        return self.users["owner"]


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
    settings: Settings = app.state.settings
    with system_scope("tests.factories"):
        async with database.transaction() as session:
            provisioned = await tenant_service.provision(
                session,
                settings,
                name=f"{name} {uuid.uuid4().hex[:6]}",
                owner_email=unique_email("owner"),
                owner_password=PASSWORD,
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
                    settings,
                    tenant_id=tenant.id,
                    email=unique_email(role_name),
                    password=PASSWORD,
                    roles=found,
                )
    return tenant


def bearer_headers(app: Any, user: User) -> dict[str, str]:
    """An access token for `user`, as the login route would issue it."""
    token, _ = issue_access_token(
        app.state.settings, user_id=user.id, tenant_id=user.tenant_id, session_id=uuid.uuid4()
    )
    return {"Authorization": f"Bearer {token}"}
