"""Deleting a role removes its assignments: restoring the role does not
silently re-grant it, and restoring a user re-checks the roles it regains."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import bearer_headers, make_role, make_tenant, make_user


async def test_a_deleted_roles_holds_do_not_come_back(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    role = await make_role(app, tenant.id, "auditor", ["audit:read"])
    user = await make_user(app, tenant.id, ("viewer", "auditor"))

    assert (await client.delete(f"/api/v1/users/{user.id}", headers=owner)).status_code == 204
    # Nobody live holds it any more, so it may be deleted ... and restored.
    assert (await client.delete(f"/api/v1/roles/{role.id}", headers=owner)).status_code == 204
    assert (await client.post(f"/api/v1/roles/{role.id}/restore", headers=owner)).status_code == 200
    restored = await client.post(f"/api/v1/users/{user.id}/restore", headers=owner)
    assert restored.status_code == 200, restored.text
    assert restored.json()["roles"] == ["viewer"]
    # The user's session sees the permissions of `viewer` only.
    me = await client.get("/api/v1/auth/me", headers=bearer_headers(app, user))
    assert "audit:read" not in me.json()["permissions"]
    holders = await client.get("/api/v1/users", params={"role": "auditor"}, headers=owner)
    assert holders.json()["items"] == []


async def test_restoring_a_user_rechecks_the_roles_it_regains(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin"))
    owner = bearer_headers(app, tenant.owner)
    admin = bearer_headers(app, tenant.users["admin"])
    co_owner = await make_user(app, tenant.id, ("owner",))
    assert (await client.delete(f"/api/v1/users/{co_owner.id}", headers=owner)).status_code == 204
    refused = await client.post(f"/api/v1/users/{co_owner.id}/restore", headers=admin)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert (
        await client.post(f"/api/v1/users/{co_owner.id}/restore", headers=owner)
    ).status_code == 200
