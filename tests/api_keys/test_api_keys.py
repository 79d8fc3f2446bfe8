"""API keys: created once with a subset of the creator's permissions, stored
only as a keyed hash, refused once revoked or expired or when the tenant is
suspended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.kit.security.tokens import keyed_hash
from tests.factories import bearer_headers, make_api_key, make_tenant

URL = "/api/v1/api-keys"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(URL, json={"name": "ci", **body}, headers=headers)


async def test_create_shows_the_key_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, app: Any, owner_engine: AsyncEngine
) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    response = await _create(
        client, owner, scopes=["audit:read", "documents:read"], rate_limit="30/10"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{URL}/{body['id']}"
    key = body["key"]
    assert key.startswith("dsr_")
    assert body["prefix"]
    assert key.startswith(body["prefix"])
    assert body["scopes"] == ["audit:read", "documents:read"]
    assert body["rate_limit"] == "30/10"
    assert body["revoked_at"] is None
    assert body["last_used_at"] is None
    assert set(body) >= {"id", "name", "prefix", "scopes", "expires_at", "created_at"}

    async with owner_engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT key_hash, api_keys::text AS whole FROM api_keys WHERE id = :id"),
                {"id": body["id"]},
            )
        ).one()
    pepper = app.state.settings.api_key_pepper.get_secret_value()
    assert row.key_hash == keyed_hash(pepper, key)
    assert key not in row.whole

    fetched = await client.get(f"{URL}/{body['id']}", headers=owner)
    assert fetched.status_code == 200
    assert "key" not in fetched.json()
    listed = await client.get(URL, headers=owner)
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert "key" not in listed.json()["items"][0]

    # The key works, with its scopes and nothing more.
    assert (await client.get("/api/v1/audit-events", headers={"X-API-Key": key})).status_code == 200
    assert (await client.get(URL, headers={"X-API-Key": key})).status_code == 403


async def test_scopes_beyond_the_creator_are_refused(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin", "member"))
    admin = bearer_headers(app, tenant.users["admin"])
    escalation = await _create(client, admin, scopes=["tenant:manage"])
    assert escalation.status_code == 403
    assert escalation.json()["code"] == "permission_denied"
    assert (await _create(client, admin, scopes=["users:manage"])).status_code == 201
    member = bearer_headers(app, tenant.users["member"])
    assert (await _create(client, member, scopes=["documents:read"])).status_code == 403


async def test_invalid_bodies_are_422(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body in (
        {"scopes": ["documents:fly"]},
        {"expires_at": past},
        {"rate_limit": "fast"},
        {"rate_limit": "0/60"},
        {"name": "  "},
    ):
        response = await _create(client, owner, **body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"


async def test_keys_cannot_mint_keys(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    key = await make_api_key(app, tenant.id, ["api_keys:manage", "documents:read"])
    response = await _create(client, key.headers, scopes=["documents:read"])
    assert response.status_code == 403
    # ... but may list and revoke them, holding the scope.
    assert (await client.get(URL, headers=key.headers)).status_code == 200


async def test_revoke_is_soft_and_the_key_stops_working(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    created = (await _create(client, owner, scopes=["audit:read"])).json()
    headers = {"X-API-Key": created["key"]}
    assert (await client.get("/api/v1/audit-events", headers=headers)).status_code == 200

    assert (await client.delete(f"{URL}/{created['id']}", headers=owner)).status_code == 204
    refused = await client.get("/api/v1/audit-events", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"
    assert "www-authenticate" in refused.headers

    fetched = (await client.get(f"{URL}/{created['id']}", headers=owner)).json()
    assert fetched["revoked_at"] is not None
    assert (await client.delete(f"{URL}/{created['id']}", headers=owner)).status_code == 204
    live = await client.get(URL, params={"revoked": "false"}, headers=owner)
    assert live.json()["items"] == []
    revoked = await client.get(URL, params={"revoked": "true"}, headers=owner)
    assert [item["id"] for item in revoked.json()["items"]] == [created["id"]]

    events = await client.get(
        "/api/v1/audit-events", params={"resource_id": created["id"]}, headers=owner
    )
    actions = [event["action"] for event in events.json()["items"]]
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]  # one revoke only
    assert all(created["key"] not in str(event) for event in events.json()["items"])


async def test_expired_key_is_401(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    expired = await make_api_key(
        app, tenant.id, ["audit:read"], expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    response = await client.get("/api/v1/audit-events", headers=expired.headers)
    assert response.status_code == 401


async def test_forged_and_malformed_keys_are_401(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    key = await make_api_key(app, tenant.id, ["audit:read"])
    tampered = key.key[:-9] + ("a" if key.key[-9] != "a" else "b") + key.key[-8:]
    for candidate in (tampered, "dsr_nothing", "not-a-key"):
        response = await client.get("/api/v1/audit-events", headers={"X-API-Key": candidate})
        assert response.status_code == 401, candidate


async def test_key_of_suspended_tenant_is_401(
    client: httpx.AsyncClient, app: Any, owner_engine: AsyncEngine
) -> None:
    tenant = await make_tenant(app)
    key = await make_api_key(app, tenant.id, ["audit:read"])
    assert (await client.get("/api/v1/audit-events", headers=key.headers)).status_code == 200
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE tenants SET status = 'suspended' WHERE id = :id"), {"id": tenant.id}
        )
    assert (await client.get("/api/v1/audit-events", headers=key.headers)).status_code == 401


async def test_bearer_and_key_together_are_401(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    key = await make_api_key(app, tenant.id, ["audit:read"])
    headers = {**key.headers, **bearer_headers(app, tenant.owner)}
    assert (await client.get("/api/v1/audit-events", headers=headers)).status_code == 401


async def test_last_used_at_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, app: Any, owner_engine: AsyncEngine
) -> None:
    tenant = await make_tenant(app)
    key = await make_api_key(app, tenant.id, ["audit:read"])

    async def last_used() -> datetime | None:
        async with owner_engine.connect() as connection:
            value: datetime | None = await connection.scalar(
                text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": key.id}
            )
            return value

    assert await last_used() is None
    assert (await client.get("/api/v1/audit-events", headers=key.headers)).status_code == 200
    first = await last_used()
    assert first is not None
    for _ in range(3):
        assert (await client.get("/api/v1/audit-events", headers=key.headers)).status_code == 200
    assert await last_used() == first


async def test_other_tenants_keys_are_404(client: httpx.AsyncClient, app: Any) -> None:
    mine = await make_tenant(app, "Mine")
    theirs = await make_tenant(app, "Theirs")
    their_key = await make_api_key(app, theirs.id, ["audit:read"])
    owner = bearer_headers(app, mine.owner)
    assert (await client.get(f"{URL}/{their_key.id}", headers=owner)).status_code == 404
    assert (await client.delete(f"{URL}/{their_key.id}", headers=owner)).status_code == 404
    assert (await client.get(URL, headers=owner)).json()["items"] == []
    # Still working for its own tenant.
    assert (await client.get("/api/v1/audit-events", headers=their_key.headers)).status_code == 200


async def test_list_paginates_both_ways(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    for index in range(3):
        assert (await _create(client, owner, name=f"k{index}")).status_code == 201
    page = (await client.get(URL, params={"page_size": 2, "sort": "name"}, headers=owner)).json()
    assert [item["name"] for item in page["items"]] == ["k0", "k1"]
    assert page["total"] == 3
    assert page["pages"] == 2
    first = (await client.get(URL, params={"limit": 2, "sort": "-name"}, headers=owner)).json()
    assert [item["name"] for item in first["items"]] == ["k2", "k1"]
    rest = await client.get(
        URL, params={"limit": 2, "sort": "-name", "cursor": first["next_cursor"]}, headers=owner
    )
    assert [item["name"] for item in rest.json()["items"]] == ["k0"]
    assert rest.json()["next_cursor"] is None
