"""`GET /api/v1/audit-events`: the tenant's trail, filtered and paginated.

That the application role can neither update nor delete audit rows is proved
in `tests/kit/test_rls.py::test_audit_rows_cannot_be_updated_or_deleted`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text

from backend.audit.models import ActorType
from backend.kit.db import tenant_scope
from tests.factories import bearer_headers, make_tenant

URL = "/api/v1/audit-events"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _seed(app: Any, tenant_id: UUID, rows: list[dict[str, Any]]) -> None:
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            for row in rows:
                await session.execute(
                    text(
                        "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action,"
                        " resource_type, resource_id, changes, created_at, updated_at)"
                        " VALUES (gen_random_uuid(), :tenant, :actor_type, :actor_id, :action,"
                        " :resource_type, :resource_id, '{}', :at, :at)"
                    ),
                    {
                        "tenant": tenant_id,
                        "actor_type": row.get("actor_type", ActorType.USER.value),
                        "actor_id": row.get("actor_id"),
                        "action": row["action"],
                        "resource_type": row["action"].split(".")[0],
                        "resource_id": row.get("resource_id"),
                        "at": row["at"],
                    },
                )


async def test_filters(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    other = await make_tenant(app, "Other")
    actor = tenant.owner.id
    await _seed(
        app,
        tenant.id,
        [
            {"action": "user.created", "resource_id": "u1", "actor_id": actor, "at": T0},
            {"action": "user.updated", "resource_id": "u1", "at": T0 + timedelta(hours=1)},
            {
                "action": "role.created",
                "resource_id": "r1",
                "actor_id": actor,
                "at": T0 + timedelta(hours=2),
            },
            {"action": "users_x.created", "resource_id": "x", "at": T0 + timedelta(hours=3)},
        ],
    )
    await _seed(app, other.id, [{"action": "user.created", "resource_id": "u1", "at": T0}])
    headers = bearer_headers(app, tenant.owner)

    async def actions(**params: Any) -> list[str]:
        response = await client.get(URL, params={"sort": "created_at", **params}, headers=headers)
        assert response.status_code == 200, response.text
        return [item["action"] for item in response.json()["items"]]

    assert await actions() == ["user.created", "user.updated", "role.created", "users_x.created"]
    assert await actions(action="user.updated") == ["user.updated"]
    assert await actions(action="user.*") == ["user.created", "user.updated"]
    assert await actions(actor_id=str(actor)) == ["user.created", "role.created"]
    assert await actions(resource_type="role") == ["role.created"]
    assert await actions(resource_type="user", resource_id="u1") == [
        "user.created",
        "user.updated",
    ]
    since = (T0 + timedelta(hours=1)).isoformat()
    until = (T0 + timedelta(hours=3)).isoformat()
    assert await actions(since=since, until=until) == ["user.updated", "role.created"]

    item = (await client.get(URL, params={"limit": 1}, headers=headers)).json()["items"][0]
    assert set(item) == {
        "id",
        "actor_type",
        "actor_id",
        "action",
        "resource_type",
        "resource_id",
        "changes",
        "ip",
        "user_agent",
        "request_id",
        "created_at",
    }
    for bad in ({"since": "yesterday"}, {"actor_id": "me"}, {"sort": "ip"}, {"limit": 101}):
        response = await client.get(URL, params=bad, headers=headers)
        assert response.status_code == 422, bad


async def test_pagination_offset_and_keyset(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    await _seed(
        app,
        tenant.id,
        [{"action": f"case.step{i}", "at": T0 + timedelta(minutes=i)} for i in range(5)],
    )
    headers = bearer_headers(app, tenant.owner)
    page = (await client.get(URL, params={"page": 2, "page_size": 2}, headers=headers)).json()
    assert [item["action"] for item in page["items"]] == ["case.step2", "case.step1"]
    assert (page["total"], page["pages"]) == (5, 3)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(URL, params=params, headers=headers)).json()
        seen += [item["action"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"case.step{i}" for i in reversed(range(5))]


async def test_changes_are_recorded_with_request_context(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = {
        **bearer_headers(app, tenant.owner),
        "X-Request-ID": "req-audit-1",
        "User-Agent": "matrix/1",
    }
    await client.patch("/api/v1/tenant", json={"name": "New name"}, headers=headers)
    events = (await client.get(URL, params={"action": "tenant.updated"}, headers=headers)).json()
    [event] = events["items"]
    assert event["actor_type"] == "user"
    assert event["actor_id"] == str(tenant.owner.id)
    assert event["resource_id"] == str(tenant.id)
    assert event["changes"]["name"]["after"] == "New name"
    assert event["request_id"] == "req-audit-1"
    assert event["user_agent"] == "matrix/1"
    assert event["ip"] == "127.0.0.1"
