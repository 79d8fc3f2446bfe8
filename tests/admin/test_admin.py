"""Platform admin routes: superadmins only, cross-tenant, audited."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.admin import service as admin_module
from backend.roles.permissions import catalogue
from tests.factories import (
    PASSWORD,
    TenantFixture,
    bearer_headers,
    make_api_key,
    make_tenant,
    unique_email,
)

URL = "/api/v1/admin"


@pytest.fixture
async def platform(app: Any) -> TenantFixture:
    return await make_tenant(app, "Platform", superadmin=True)


@pytest.fixture
def root(app: Any, platform: TenantFixture) -> dict[str, str]:
    return bearer_headers(app, platform.owner)


async def test_only_superadmins_get_in(
    client: httpx.AsyncClient, app: Any, platform: TenantFixture, root: dict[str, str]
) -> None:
    other = await make_tenant(app)
    assert (await client.get(f"{URL}/stats", headers=root)).status_code == 200
    refused = await client.get(f"{URL}/stats", headers=bearer_headers(app, other.owner))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert (await client.get(f"{URL}/stats")).status_code == 401
    # Keys never reach admin routes, even a superadmin's tenant's key with every scope.
    key = await make_api_key(app, platform.id, catalogue.names())
    assert (await client.get(f"{URL}/tenants", headers=key.headers)).status_code == 403


async def test_create_get_list_tenant(
    client: httpx.AsyncClient, app: Any, root: dict[str, str]
) -> None:
    email = unique_email("boss")
    response = await client.post(
        f"{URL}/tenants",
        json={
            "name": "Acme",
            "slug": "acme",
            "plan": "pro",
            "owner_email": email,
            "owner_password": PASSWORD,
        },
        headers=root,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{URL}/tenants/{body['id']}"
    assert body["slug"] == "acme"
    assert body["plan"] == "pro"
    assert body["limits"]["rate_limit"] == "1200/60"
    assert body["owner"]["email"] == email
    assert body["owner"]["roles"] == ["owner"]

    fetched = await client.get(f"{URL}/tenants/{body['id']}", headers=root)
    assert fetched.json()["name"] == "Acme"
    listed = await client.get(f"{URL}/tenants", params={"q": "acm"}, headers=root)
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    users = await client.get(f"{URL}/tenants/{body['id']}/users", headers=root)
    assert [user["email"] for user in users.json()["items"]] == [email]
    assert users.json()["items"][0]["roles"] == ["owner"]

    duplicate = await client.post(
        f"{URL}/tenants",
        json={
            "name": "Acme 2",
            "slug": "acme",
            "owner_email": unique_email(),
            "owner_password": PASSWORD,
        },
        headers=root,
    )
    assert duplicate.status_code == 409
    for bad in (
        {"plan": "platinum"},
        {"owner_password": "short"},
        {"slug": "Not A Slug"},
        {"owner_email": "nope"},
    ):
        payload = {"name": "X", "owner_email": unique_email(), "owner_password": PASSWORD, **bad}
        answer = await client.post(f"{URL}/tenants", json=payload, headers=root)
        assert answer.status_code == 422, bad

    events = await client.get(f"{URL}/audit-events", params={"tenant_id": body["id"]}, headers=root)
    assert [event["action"] for event in events.json()["items"]] == ["tenant.created"]
    assert events.json()["items"][0]["tenant_id"] == body["id"]


async def test_suspend_locks_the_tenant_out_and_reactivate_lets_it_back(
    client: httpx.AsyncClient, app: Any, platform: TenantFixture, root: dict[str, str]
) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    key = await make_api_key(app, tenant.id, ["tenant:read"])
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 200

    suspended = await client.patch(
        f"{URL}/tenants/{tenant.id}", json={"status": "suspended"}, headers=root
    )
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 401
    assert (await client.get("/api/v1/tenant", headers=key.headers)).status_code == 401

    only_suspended = await client.get(
        f"{URL}/tenants", params={"status": "suspended"}, headers=root
    )
    assert [item["id"] for item in only_suspended.json()["items"]] == [str(tenant.id)]
    await client.patch(f"{URL}/tenants/{tenant.id}", json={"status": "active"}, headers=root)
    assert (
        await client.get(f"{URL}/tenants", params={"status": "suspended"}, headers=root)
    ).json()["items"] == []
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 200

    events = await client.get(
        f"{URL}/audit-events",
        params={"tenant_id": str(tenant.id), "action": "tenant.*"},
        headers=root,
    )
    actions = sorted(event["action"] for event in events.json()["items"])
    assert actions == ["tenant.reactivated", "tenant.suspended"]
    assert all(event["actor_id"] == str(platform.owner.id) for event in events.json()["items"])

    own = await client.patch(
        f"{URL}/tenants/{platform.id}", json={"status": "suspended"}, headers=root
    )
    assert own.status_code == 409


async def test_plan_and_limit_overrides(
    client: httpx.AsyncClient, app: Any, root: dict[str, str]
) -> None:
    tenant = await make_tenant(app)
    url = f"{URL}/tenants/{tenant.id}"
    response = await client.patch(
        url,
        json={"plan": "enterprise", "limits": {"storage_bytes": 5, "rate_limit": "9/9"}},
        headers=root,
    )
    assert response.status_code == 200, response.text
    assert response.json()["limit_overrides"] == {"storage_bytes": 5, "rate_limit": "9/9"}
    view = (await client.get("/api/v1/tenant", headers=bearer_headers(app, tenant.owner))).json()
    assert view["limits"] == {
        "storage_bytes": 5,
        "max_running_jobs": 50,
        "rate_limit": "9/9",
        "max_crawl_pages": 50000,
    }

    cleared = await client.patch(url, json={"limits": {"storage_bytes": None}}, headers=root)
    assert cleared.json()["limit_overrides"] == {"rate_limit": "9/9"}
    assert cleared.json()["limits"]["storage_bytes"] == 1024 * 1024**3
    for bad in (
        {"plan": "nope"},
        {"limits": {"rate_limit": "lots"}},
        {"status": "gone"},
        {"limits": {"max_running_jobs": -1}},
    ):
        assert (await client.patch(url, json=bad, headers=root)).status_code == 422, bad
    missing = await client.patch(
        f"{URL}/tenants/00000000-0000-7000-8000-000000000000", json={"name": "x"}, headers=root
    )
    assert missing.status_code == 404


async def test_delete_and_restore(
    client: httpx.AsyncClient, app: Any, platform: TenantFixture, root: dict[str, str]
) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    url = f"{URL}/tenants/{tenant.id}"
    assert (await client.delete(url, headers=root)).status_code == 204
    assert (await client.get(url, headers=root)).status_code == 404
    assert (await client.get(url, params={"include_deleted": "true"}, headers=root)).json()[
        "deleted_at"
    ]
    listed = await client.get(f"{URL}/tenants", headers=root)
    assert str(tenant.id) not in [item["id"] for item in listed.json()["items"]]
    with_deleted = await client.get(
        f"{URL}/tenants", params={"include_deleted": "true"}, headers=root
    )
    assert str(tenant.id) in [item["id"] for item in with_deleted.json()["items"]]
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 401

    restored = await client.post(f"{url}/restore", headers=root)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert (await client.get("/api/v1/tenant", headers=owner)).status_code == 200
    assert (await client.delete(f"{URL}/tenants/{platform.id}", headers=root)).status_code == 409


async def test_stats_count_across_tenants(
    client: httpx.AsyncClient,
    app: Any,
    platform: TenantFixture,
    root: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await make_tenant(app, roles=("owner", "member"))
    await make_tenant(app, roles=("owner", "viewer", "admin"))
    await make_api_key(app, first.id, [])
    await make_api_key(app, first.id, [], revoked=True)
    stats = (await client.get(f"{URL}/stats", headers=root)).json()
    assert stats == {
        "tenants": 3,
        "users": 1 + 2 + 3,
        "api_keys": 1,
        "documents": 0,
        "storage_bytes": 0,
        "jobs": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
    }

    monkeypatch.setattr(admin_module, "_stats_providers", {})

    async def documents(session: Any) -> int:
        return 42

    async def jobs(session: Any) -> dict[str, int]:
        return {"queued": 3}

    admin_module.register_stats_provider("documents", documents)
    admin_module.register_stats_provider("jobs", jobs)
    stats = (await client.get(f"{URL}/stats", headers=root)).json()
    assert stats["documents"] == 42
    assert stats["jobs"]["queued"] == 3
    assert stats["jobs"]["failed"] == 0


async def test_purge_removes_only_what_retention_allows(
    client: httpx.AsyncClient,
    app: Any,
    root: dict[str, str],
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = await make_tenant(app, "Old", roles=("owner", "member"))
    recent = await make_tenant(app, "Recent")
    live = await make_tenant(app, "Live", roles=("owner", "viewer"))
    for tenant in (old, recent):
        assert (await client.delete(f"{URL}/tenants/{tenant.id}", headers=root)).status_code == 204
    days = app.state.settings.soft_delete_retention_days
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE tenants SET deleted_at = now() - make_interval(days => :d) WHERE id = :id"
            ),
            {"d": days + 1, "id": old.id},
        )
        await connection.execute(
            text("UPDATE users SET deleted_at = now() - make_interval(days => :d) WHERE id = :id"),
            {"d": days + 1, "id": live.users["viewer"].id},
        )
    monkeypatch.setattr(admin_module, "_purgers", {})
    calls: list[Any] = []

    async def documents(session: Any, cutoff: Any, tenant_ids: list[Any]) -> int:
        calls.append(tenant_ids)
        return 0

    admin_module.register_purger("documents", documents)
    response = await client.post(f"{URL}/purge", headers=root)
    assert response.status_code == 200, response.text
    assert response.json()["purged"] == {"documents": 0, "users": 1, "roles": 0, "tenants": 1}
    assert calls == [[old.id]]

    async with owner_engine.connect() as connection:
        tenants = set((await connection.execute(text("SELECT id FROM tenants"))).scalars())
        users = set((await connection.execute(text("SELECT id FROM users"))).scalars())
    assert old.id not in tenants
    assert {recent.id, live.id} <= tenants
    assert old.owner.id not in users
    assert live.users["viewer"].id not in users
    assert live.owner.id in users
    events = await client.get(
        f"{URL}/audit-events", params={"action": "platform.purged"}, headers=root
    )
    assert len(events.json()["items"]) == 1
