"""A case's timeline: the audit events' fields (request id included), and its
documents' events only for callers who may read documents."""

from __future__ import annotations

from typing import Any

import httpx

from tests.documents.helpers import upload
from tests.factories import bearer_headers, make_role, make_tenant, make_user


async def test_timeline_items_are_audit_events_with_request_ids(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post(
        "/api/v1/cases", headers={**headers, "X-Request-ID": "case-create-1"}, json={"title": "A"}
    )
    case = created.json()
    timeline = await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=headers)
    assert timeline.status_code == 200
    first = timeline.json()["items"][0]
    assert first["action"] == "case.created"
    assert first["request_id"] == "case-create-1"
    assert {"ip", "user_agent", "actor_type", "actor_id", "changes"} <= set(first)


async def test_document_events_need_documents_read(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    owner = bearer_headers(app, tenant.owner)
    case = (await client.post("/api/v1/cases", headers=owner, json={"title": "A"})).json()
    document = (await upload(client, owner)).json()
    attached = await client.post(
        f"/api/v1/cases/{case['id']}/documents", headers=owner, json={"document_id": document["id"]}
    )
    assert attached.status_code == 200
    await make_role(app, tenant.id, "case-reader", ["cases:read"])
    reader = bearer_headers(app, await make_user(app, tenant.id, ("case-reader",)))

    def types(answer: httpx.Response) -> set[str]:
        return {item["resource_type"] for item in answer.json()["items"]}

    everything = await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=owner)
    assert types(everything) == {"case", "document"}
    cases_only = await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=reader)
    assert cases_only.status_code == 200
    assert types(cases_only) == {"case"}
