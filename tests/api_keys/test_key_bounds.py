"""API keys never exceed their tenant's plan or their creator: a key's own
rate limit is capped by the plan's (422 above it at creation), and its
effective scopes are its scopes intersected with its creator's current
permissions; a deactivated or deleted creator's keys stop working (401)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import bearer_headers, make_api_key, make_role, make_tenant, make_user

URL = "/api/v1/api-keys"


async def test_a_rate_limit_above_the_plan_is_refused_at_creation(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)  # free plan: RATE_LIMIT_DEFAULT, 600/60
    owner = bearer_headers(app, tenant.owner)
    for too_much in ("601/60", "11/1", "100000/3600"):
        response = await client.post(URL, json={"name": "k", "rate_limit": too_much}, headers=owner)
        assert response.status_code == 422, too_much
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["errors"][0]["loc"] == ["body", "rate_limit"]
    for within in ("600/60", "10/1", "60/60"):
        response = await client.post(URL, json={"name": "k", "rate_limit": within}, headers=owner)
        assert response.status_code == 201, (within, response.text)


async def test_a_keys_scopes_shrink_with_its_creators_permissions(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    role = await make_role(app, tenant.id, "auditor", ["audit:read", "api_keys:manage"])
    creator = await make_user(app, tenant.id, ("auditor",))
    created = await client.post(
        URL, json={"name": "k", "scopes": ["audit:read"]}, headers=bearer_headers(app, creator)
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    assert (await client.get("/api/v1/audit-events", headers=key)).status_code == 200

    # The creator loses `audit:read`: the key loses it too, at once.
    patched = await client.patch(
        f"/api/v1/roles/{role.id}", json={"permissions": ["api_keys:manage"]}, headers=owner
    )
    assert patched.status_code == 200, patched.text
    refused = await client.get("/api/v1/audit-events", headers=key)
    assert refused.status_code == 403
    # ... and regains it when the creator does.
    await client.patch(
        f"/api/v1/roles/{role.id}",
        json={"permissions": ["api_keys:manage", "audit:read"]},
        headers=owner,
    )
    assert (await client.get("/api/v1/audit-events", headers=key)).status_code == 200


async def test_a_deactivated_or_deleted_creators_keys_stop_working(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin"))
    owner = bearer_headers(app, tenant.owner)
    admin = tenant.users["admin"]
    first = await make_api_key(app, tenant.id, ["audit:read"], created_by=admin.id)
    assert (await client.get("/api/v1/audit-events", headers=first.headers)).status_code == 200

    deactivated = await client.patch(
        f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=owner
    )
    assert deactivated.status_code == 200, deactivated.text
    refused = await client.get("/api/v1/audit-events", headers=first.headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"

    # Reactivated: the key works again (it was never revoked) ...
    await client.patch(f"/api/v1/users/{admin.id}", json={"is_active": True}, headers=owner)
    assert (await client.get("/api/v1/audit-events", headers=first.headers)).status_code == 200
    # ... until the creator is deleted; an admin re-issues a key of their own.
    assert (await client.delete(f"/api/v1/users/{admin.id}", headers=owner)).status_code == 204
    assert (await client.get("/api/v1/audit-events", headers=first.headers)).status_code == 401
    reissued = await client.post(URL, json={"name": "k", "scopes": ["audit:read"]}, headers=owner)
    again = {"X-API-Key": reissued.json()["key"]}
    assert (await client.get("/api/v1/audit-events", headers=again)).status_code == 200
