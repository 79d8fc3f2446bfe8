"""Webhooks only carry what their creator may read: subscribing to
`document.*` needs `documents:read`, `case.*` `cases:read`, `job.*`
`jobs:read`; checked at create, update, redelivery and fan-out (where the
creator's current permissions count, not those they had at creation)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.documents.helpers import upload
from tests.factories import bearer_headers, make_role, make_tenant, make_user

URL = "/api/v1/webhooks"
TARGET = "https://93.184.216.34/hook"  # public, never contacted: no worker runs here


async def _hook_maker(app: Any, tenant_id: Any, permissions: list[str]) -> tuple[Any, Any]:
    role = await make_role(app, tenant_id, f"hooks-{len(permissions)}", permissions)
    user = await make_user(app, tenant_id, (role.name,))
    return role, bearer_headers(app, user)


async def test_subscribing_needs_the_events_read_permission(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    _, only_manage = await _hook_maker(app, tenant.id, ["webhooks:manage"])
    for events in (["document.created"], ["case.created"], ["job.succeeded"]):
        refused = await client.post(
            URL, json={"url": TARGET, "events": events}, headers=only_manage
        )
        assert refused.status_code == 403, (events, refused.text)
        assert refused.json()["code"] == "permission_denied"

    _, jobs_reader = await _hook_maker(app, tenant.id, ["webhooks:manage", "jobs:read"])
    created = await client.post(
        URL, json={"url": TARGET, "events": ["job.succeeded"]}, headers=jobs_reader
    )
    assert created.status_code == 201, created.text
    widened = await client.patch(
        f"{URL}/{created.json()['id']}",
        json={"events": ["job.succeeded", "document.created"]},
        headers=jobs_reader,
    )
    assert widened.status_code == 403
    assert (await client.get(f"{URL}/{created.json()['id']}", headers=jobs_reader)).json()[
        "events"
    ] == ["job.succeeded"]


async def test_fan_out_and_redelivery_follow_the_creators_current_permissions(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    role, creator = await _hook_maker(
        app, tenant.id, ["webhooks:manage", "documents:read", "documents:write"]
    )
    hook = await client.post(
        URL, json={"url": TARGET, "events": ["document.created"]}, headers=creator
    )
    assert hook.status_code == 201, hook.text
    deliveries = f"{URL}/{hook.json()['id']}/deliveries"

    assert (await upload(client, owner)).status_code == 201
    first = (await client.get(deliveries, headers=owner)).json()["items"]
    assert [item["event_type"] for item in first] == ["document.created"]

    # The creator can no longer read documents: nothing more goes out ...
    lowered = await client.patch(
        f"/api/v1/roles/{role.id}",
        json={"permissions": ["webhooks:manage", "documents:write"]},
        headers=owner,
    )
    assert lowered.status_code == 200, lowered.text
    assert (await upload(client, owner)).status_code == 201
    assert len((await client.get(deliveries, headers=owner)).json()["items"]) == 1
    # ... and nothing already recorded can be sent again, even by the owner.
    again = await client.post(f"{deliveries}/{first[0]['id']}/redeliver", headers=owner)
    assert again.status_code == 403
    assert again.json()["code"] == "permission_denied"


async def test_delivery_jobs_are_hidden_and_untouchable_without_webhooks_manage(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    owner = bearer_headers(app, tenant.owner)
    member = bearer_headers(app, tenant.users["member"])  # jobs:read and jobs:write
    hook = await client.post(URL, json={"url": TARGET, "events": ["job.queued"]}, headers=owner)
    assert hook.status_code == 201, hook.text
    ping = await client.post(f"{URL}/{hook.json()['id']}/ping", headers=owner)
    assert ping.status_code == 202
    delivery_job = ping.json()["job_id"]

    listed = (await client.get("/api/v1/jobs", headers=owner)).json()["items"]
    assert delivery_job in [job["id"] for job in listed]
    seen = (await client.get("/api/v1/jobs", headers=member)).json()["items"]
    assert delivery_job not in [job["id"] for job in seen]
    by_type = await client.get("/api/v1/jobs", params={"type": "webhook.deliver"}, headers=member)
    assert by_type.json()["items"] == []

    for method, path in (
        ("POST", f"/api/v1/jobs/{delivery_job}/cancel"),
        ("POST", f"/api/v1/jobs/{delivery_job}/retry"),
        ("DELETE", f"/api/v1/jobs/{delivery_job}"),
    ):
        refused = await client.request(method, path, headers=member)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["code"] == "permission_denied"
    cancelled = await client.post(f"/api/v1/jobs/{delivery_job}/cancel", headers=owner)
    assert cancelled.status_code == 200, cancelled.text
