"""`/api/v1/tenant`: the tenant's own view, its plan limits with overrides,
and usage supplied by other domains through the provider registry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.kit.db import tenant_scope
from backend.settings import PlanSpec
from backend.tenants import service as tenants_module
from backend.tenants.service import register_usage_provider, tenant_service
from backend.users.models import User
from tests.conftest import make_settings
from tests.factories import bearer_headers, make_tenant

URL = "/api/v1/tenant"


async def test_get_tenant_shows_plan_limits_and_zero_usage(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    response = await client.get(URL, headers=bearer_headers(app, tenant.users["viewer"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(tenant.id)
    assert body["slug"] == tenant.slug
    assert body["plan"] == "free"
    assert body["status"] == "active"
    assert body["limits"] == {
        "storage_bytes": 1024**3,
        "max_running_jobs": 2,
        "rate_limit": "600/60",  # the free plan has no tier: RATE_LIMIT_DEFAULT
        "max_crawl_pages": 500,
    }
    assert body["usage"] == {"storage_bytes": 0, "running_jobs": 0}


async def test_usage_comes_from_registered_providers(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tenants_module, "_usage_providers", {})

    def storage(tenant_id: Any) -> Any:
        # No tenant filter here: read in the tenant's scope, RLS shows this
        # tenant's users only.
        return select(func.count() * 1000).select_from(User).scalar_subquery()

    register_usage_provider("storage_bytes", storage)
    with pytest.raises(ValueError, match="unknown usage"):
        register_usage_provider("bananas", storage)
    tenant = await make_tenant(app, roles=("owner", "member"))
    await make_tenant(app, "Other", roles=("owner", "member", "viewer"))
    response = await client.get(URL, headers=bearer_headers(app, tenant.owner))
    assert response.json()["usage"] == {"storage_bytes": 2000, "running_jobs": 0}


async def test_limits_merge_plan_and_overrides(app: Any, owner_engine: AsyncEngine) -> None:
    tenant = await make_tenant(app)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE tenants SET plan = 'pro', limits = '{\"max_running_jobs\": 7}' "
                "WHERE id = :id"
            ),
            {"id": tenant.id},
        )
    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            limits = await tenant_service.limits_for(session, tenant.id, app.state.settings)
    assert limits.storage_bytes == 100 * 1024**3
    assert limits.max_running_jobs == 7
    assert str(limits.rate_limit) == "1200/60"


def test_plans_setting_is_validated(database_url: str, redis_url: str) -> None:
    custom = make_settings(
        database_url, redis_url, plans={"free": {"storage_bytes": 5, "max_running_jobs": 1}}
    )
    assert custom.plans == {"free": PlanSpec(storage_bytes=5, max_running_jobs=1)}
    with pytest.raises(ValueError, match="free"):
        make_settings(
            database_url, redis_url, plans={"gold": {"storage_bytes": 5, "max_running_jobs": 1}}
        )
    with pytest.raises(ValueError, match="rate limit"):
        make_settings(
            database_url,
            redis_url,
            plans={"free": {"storage_bytes": 5, "max_running_jobs": 1, "rate_limit": "x"}},
        )


async def test_patch_renames_and_merges_settings(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin"))
    owner = bearer_headers(app, tenant.owner)
    first = await client.patch(
        URL,
        json={"name": "Renamed", "settings": {"auto_extract_text": False, "tz": "UTC"}},
        headers=owner,
    )
    assert first.status_code == 200, first.text
    assert first.json()["name"] == "Renamed"
    assert first.json()["settings"] == {"auto_extract_text": False, "tz": "UTC"}
    second = await client.patch(URL, json={"settings": {"tz": None}}, headers=owner)
    assert second.json()["settings"] == {"auto_extract_text": False}

    events = await client.get(
        "/api/v1/audit-events", params={"action": "tenant.updated"}, headers=owner
    )
    items = events.json()["items"]
    assert len(items) == 2
    assert items[-1]["changes"]["name"] == {
        "before": items[-1]["changes"]["name"]["before"],
        "after": "Renamed",
    }

    # The admin role lacks tenant:manage; plan and status are not the tenant's to change.
    admin = bearer_headers(app, tenant.users["admin"])
    assert (await client.patch(URL, json={"name": "x"}, headers=admin)).status_code == 403
    for body in ({"plan": "enterprise"}, {"status": "active"}, {"name": ""}):
        assert (await client.patch(URL, json=body, headers=owner)).status_code == 422, body


async def test_usage_is_read_with_the_tenant_and_providers_of_a_name_add_up(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usage providers are read in the tenant's own statement (GET /tenant
    sends one statement for the tenant and its usage), and two providers of
    one name (documents and a workload both hold storage) add up."""
    monkeypatch.setattr(tenants_module, "_usage_providers", {})

    def users_kilobytes(tenant_id: Any) -> Any:
        return select(func.count() * 1000).where(User.tenant_id == tenant_id).scalar_subquery()

    def seven(tenant_id: Any) -> Any:
        return literal(7)

    register_usage_provider("storage_bytes", users_kilobytes)
    register_usage_provider("storage_bytes", users_kilobytes)  # again: no-op
    register_usage_provider("storage_bytes", seven)
    register_usage_provider("running_jobs", users_kilobytes)
    tenant = await make_tenant(app, roles=("owner", "member"))
    await make_tenant(app, "Other", roles=("owner", "member", "viewer"))
    headers = bearer_headers(app, tenant.owner)
    assert (await client.get(URL, headers=headers)).status_code == 200  # principal cached
    statements: list[str] = []

    def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", _record)
    try:
        response = await client.get(URL, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", _record)
    assert response.json()["usage"] == {"storage_bytes": 2007, "running_jobs": 2000}
    assert len(statements) == 1, statements
    assert "FROM tenants" in statements[0]
