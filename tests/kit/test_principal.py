"""The principal dependency: bearer tokens bind the request to their tenant,
`require` guards permissions, `SuperAdmin` admits platform admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from backend.auth.deps import CurrentPrincipal, SuperAdmin, require
from backend.auth.principal import Principal
from backend.kit.deps import DbSession
from backend.main import create_app
from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant


@pytest.fixture(scope="module")
async def probe_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)

    @app.get("/probe/whoami")
    async def whoami(principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
        visible = await session.execute(text("SELECT DISTINCT tenant_id FROM users"))
        return {
            "id": str(principal.id),
            "tenant_id": str(principal.tenant_id),
            "visible_tenants": [str(row) for row in visible.scalars()],
            "permissions": sorted(principal.permissions),
        }

    @app.get("/probe/manage-users")
    async def manage(principal: Annotated[Principal, require("users:manage")]) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/probe/admin")
    async def admin(principal: SuperAdmin, session: DbSession) -> dict[str, int]:
        count = await session.scalar(text("SELECT count(DISTINCT tenant_id) FROM users"))
        return {"tenants": int(count or 0)}

    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def probe(probe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_bearer_token_binds_the_tenant(probe: httpx.AsyncClient, probe_app: Any) -> None:
    first = await make_tenant(probe_app, "A", roles=("owner", "viewer"))
    await make_tenant(probe_app, "B")
    response = await probe.get("/probe/whoami", headers=bearer_headers(probe_app, first.owner))
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_id"] == str(first.id)
    assert body["visible_tenants"] == [str(first.id)]
    assert "tenant:manage" in body["permissions"]


async def test_missing_or_bad_credentials_are_401(probe: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"X-API-Key": "dsr_nope"}):
        response = await probe.get("/probe/whoami", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthenticated"


async def test_require_refuses_missing_permission(probe: httpx.AsyncClient, probe_app: Any) -> None:
    tenant = await make_tenant(probe_app, "A", roles=("owner", "viewer"))
    owner_headers = bearer_headers(probe_app, tenant.owner)
    allowed = await probe.get("/probe/manage-users", headers=owner_headers)
    assert allowed.status_code == 200
    viewer = tenant.users["viewer"]
    refused = await probe.get("/probe/manage-users", headers=bearer_headers(probe_app, viewer))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


async def test_superadmin_only_and_cross_tenant(probe: httpx.AsyncClient, probe_app: Any) -> None:
    platform = await make_tenant(probe_app, "Platform", superadmin=True)
    other = await make_tenant(probe_app, "Other")
    refused = await probe.get("/probe/admin", headers=bearer_headers(probe_app, other.owner))
    assert refused.status_code == 403
    allowed = await probe.get("/probe/admin", headers=bearer_headers(probe_app, platform.owner))
    assert allowed.status_code == 200
    assert allowed.json() == {"tenants": 2}
