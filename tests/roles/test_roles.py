"""The roles routes and the permission catalogue."""

from __future__ import annotations

from typing import Any

import httpx

from backend.roles.permissions import catalogue
from tests.factories import bearer_headers, make_role, make_tenant, make_user, run_sql

WORKLOADS = ("marking", "candidates", "crawls", "scans")
CATALOGUE = [
    "tenant:read",
    "tenant:manage",
    "users:read",
    "users:manage",
    "roles:read",
    "roles:manage",
    "api_keys:manage",
    "documents:read",
    "documents:write",
    "documents:delete",
    "cases:read",
    "cases:write",
    "cases:delete",
    "jobs:read",
    "jobs:write",
    "webhooks:manage",
    "audit:read",
    "marking:read",
    "marking:write",
    "candidates:read",
    "candidates:write",
    "crawls:read",
    "crawls:write",
    "scans:read",
    "scans:write",
]


async def test_permissions_catalogue(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    response = await client.get(
        "/api/v1/permissions", headers=bearer_headers(app, tenant.users["viewer"])
    )
    assert response.status_code == 200
    assert response.json() == CATALOGUE


async def test_system_roles_as_specified(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    response = await client.get("/api/v1/roles", headers=bearer_headers(app, tenant.owner))
    roles = {role["name"]: role for role in response.json()["items"]}
    assert all(role["is_system"] for role in roles.values())
    assert sorted(roles["owner"]["permissions"]) == sorted(CATALOGUE)
    assert sorted(roles["admin"]["permissions"]) == sorted(set(CATALOGUE) - {"tenant:manage"})
    member = {
        "tenant:read",
        "users:read",
        "roles:read",
        "documents:read",
        "documents:write",
        "cases:read",
        "cases:write",
        "jobs:read",
        "jobs:write",
        *(f"{workload}:{access}" for workload in WORKLOADS for access in ("read", "write")),
    }
    assert set(roles["member"]["permissions"]) == member
    assert set(roles["viewer"]["permissions"]) == {p for p in member if p.endswith(":read")}


async def test_custom_role_lifecycle(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin"))
    admin = bearer_headers(app, tenant.users["admin"])

    created = await client.post(
        "/api/v1/roles",
        headers=admin,
        json={
            "name": "Auditor",
            "description": "Reads the trail",
            "permissions": ["audit:read", "users:read", "audit:read"],
        },
    )
    assert created.status_code == 201, created.text
    role = created.json()
    assert created.headers["location"] == f"/api/v1/roles/{role['id']}"
    assert role["permissions"] == ["audit:read", "users:read"]
    assert role["is_system"] is False

    fetched = await client.get(f"/api/v1/roles/{role['id']}", headers=admin)
    assert fetched.json() == role

    patched = await client.patch(
        f"/api/v1/roles/{role['id']}",
        headers=admin,
        json={"permissions": ["audit:read", "documents:read"], "description": "Changed"},
    )
    assert patched.status_code == 200
    assert patched.json()["permissions"] == ["audit:read", "documents:read"]
    assert patched.json()["description"] == "Changed"

    duplicate = await client.post(
        "/api/v1/roles", headers=admin, json={"name": "auditor", "permissions": []}
    )
    assert duplicate.status_code == 409
    system_name = await client.post(
        "/api/v1/roles", headers=admin, json={"name": "Owner", "permissions": []}
    )
    assert system_name.status_code == 409

    deleted = await client.delete(f"/api/v1/roles/{role['id']}", headers=admin)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/roles/{role['id']}", headers=admin)).status_code == 404
    listed = (await client.get("/api/v1/roles", headers=admin)).json()
    assert role["id"] not in {item["id"] for item in listed["items"]}
    with_deleted = (await client.get("/api/v1/roles?include_deleted=true", headers=admin)).json()
    assert role["id"] in {item["id"] for item in with_deleted["items"]}

    # The name is free again while the role is deleted; restoring then conflicts.
    again = await client.post(
        "/api/v1/roles", headers=admin, json={"name": "Auditor", "permissions": []}
    )
    assert again.status_code == 201
    conflict = await client.post(f"/api/v1/roles/{role['id']}/restore", headers=admin)
    assert conflict.status_code == 409
    assert (
        await client.delete(f"/api/v1/roles/{again.json()['id']}", headers=admin)
    ).status_code == 204
    restored = await client.post(f"/api/v1/roles/{role['id']}/restore", headers=admin)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None

    rows = await run_sql(
        app,
        "SELECT action FROM audit_events WHERE resource_id = :id ORDER BY created_at, id",
        id=role["id"],
    )
    assert [row[0] for row in rows] == [
        "role.created",
        "role.updated",
        "role.deleted",
        "role.restored",
    ]


async def test_unknown_permission_is_422(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    owner = bearer_headers(app, tenant.owner)
    response = await client.post(
        "/api/v1/roles", headers=owner, json={"name": "Odd", "permissions": ["documents:eat"]}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == ["body", "permissions"]
    custom = await make_role(app, tenant.id, "custom", ["documents:read"])
    patched = await client.patch(
        f"/api/v1/roles/{custom.id}", headers=owner, json={"permissions": ["root"]}
    )
    assert patched.status_code == 422
    blank = await client.post(
        "/api/v1/roles", headers=owner, json={"name": "  ", "permissions": []}
    )
    assert blank.status_code == 422


async def test_system_roles_are_immutable(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    owner = bearer_headers(app, tenant.owner)
    roles = (await client.get("/api/v1/roles", headers=owner)).json()["items"]
    member = next(role for role in roles if role["name"] == "member")
    for body in ({"permissions": ["documents:read"]}, {"name": "members"}, {"description": "x"}):
        response = await client.patch(f"/api/v1/roles/{member['id']}", headers=owner, json=body)
        assert response.status_code == 409
        assert response.json()["code"] == "system_role"
    deleted = await client.delete(f"/api/v1/roles/{member['id']}", headers=owner)
    assert deleted.status_code == 409
    assert deleted.json()["code"] == "system_role"


async def test_role_in_use_cannot_be_deleted(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    owner = bearer_headers(app, tenant.owner)
    custom = await make_role(app, tenant.id, "reviewer", ["documents:read"])
    holders = [await make_user(app, tenant.id, ("member", "reviewer")) for _ in range(2)]
    response = await client.delete(f"/api/v1/roles/{custom.id}", headers=owner)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "role_in_use"
    assert body["count"] == 2
    assert "2 users" in body["detail"]

    # Reassign one, delete the other: a deleted user does not hold it any more.
    moved = await client.put(
        f"/api/v1/users/{holders[0].id}/roles", headers=owner, json={"roles": ["member"]}
    )
    assert moved.status_code == 200
    assert (await client.delete(f"/api/v1/users/{holders[1].id}", headers=owner)).status_code == 204
    assert (await client.delete(f"/api/v1/roles/{custom.id}", headers=owner)).status_code == 204


async def test_no_role_beyond_ones_own_permissions(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin"))
    admin = bearer_headers(app, tenant.users["admin"])
    created = await client.post(
        "/api/v1/roles", headers=admin, json={"name": "Boss", "permissions": ["tenant:manage"]}
    )
    assert created.status_code == 403
    custom = await make_role(app, tenant.id, "ops", ["documents:read"])
    widened = await client.patch(
        f"/api/v1/roles/{custom.id}",
        headers=admin,
        json={"permissions": ["documents:read", "tenant:manage"]},
    )
    assert widened.status_code == 403
    # The owner holds everything.
    owner_made = await client.post(
        "/api/v1/roles",
        headers=bearer_headers(app, tenant.owner),
        json={"name": "Boss", "permissions": catalogue.names()},
    )
    assert owner_made.status_code == 201


async def test_roles_list_sort_and_pages(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    viewer = bearer_headers(app, tenant.users["viewer"])
    names = [
        role["name"] for role in (await client.get("/api/v1/roles", headers=viewer)).json()["items"]
    ]
    assert names == ["admin", "member", "owner", "viewer"]
    page = (await client.get("/api/v1/roles?limit=3&sort=-name", headers=viewer)).json()
    assert [role["name"] for role in page["items"]] == ["viewer", "owner", "member"]
    rest = (
        await client.get(
            "/api/v1/roles",
            params={"limit": 3, "sort": "-name", "cursor": page["next_cursor"]},
            headers=viewer,
        )
    ).json()
    assert [role["name"] for role in rest["items"]] == ["admin"]
    assert rest["next_cursor"] is None
    refused = await client.get("/api/v1/roles?include_deleted=true", headers=viewer)
    assert refused.status_code == 403
    other = await make_tenant(app, roles=("owner",))
    other_role = (
        await client.get("/api/v1/roles", headers=bearer_headers(app, other.owner))
    ).json()["items"][0]
    assert (
        await client.get(f"/api/v1/roles/{other_role['id']}", headers=viewer)
    ).status_code == 404
