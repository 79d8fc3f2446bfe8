"""Cases end to end: references under concurrency, transitions, limits,
documents and timeline."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.documents.helpers import upload
from tests.factories import bearer_headers, make_tenant


async def test_fifty_concurrent_creates_get_unique_references(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    answers = await asyncio.gather(
        *[
            client.post("/api/v1/cases", headers=headers, json={"title": f"case {i}"})
            for i in range(50)
        ]
    )
    assert [answer.status_code for answer in answers] == [201] * 50
    references = {answer.json()["reference"] for answer in answers}
    assert references == {f"CASE-{n:06d}" for n in range(1, 51)}
    other = await make_tenant(app)
    theirs = await client.post(
        "/api/v1/cases", headers=bearer_headers(app, other.owner), json={"title": "x"}
    )
    assert theirs.json()["reference"] == "CASE-000001"


async def test_transitions_and_closed_at(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post("/api/v1/cases", headers=headers, json={"title": "T"})
    assert created.status_code == 201
    case = created.json()
    assert case["status"] == "open"
    assert case["priority"] == "normal"
    assert created.headers["Location"].endswith(f"/api/v1/cases/{case['id']}")
    url = f"/api/v1/cases/{case['id']}"

    async def move(status: str) -> httpx.Response:
        return await client.patch(url, headers=headers, json={"status": status})

    path = ["in_progress", "on_hold", "in_progress", "closed"]
    for status in path:
        answer = await move(status)
        assert answer.status_code == 200, (status, answer.text)
    assert answer.json()["closed_at"] is not None
    for refused in ("in_progress", "on_hold"):
        bad = await move(refused)
        assert bad.status_code == 409
        assert bad.json()["code"] == "invalid_transition"
    assert (await move("closed")).status_code == 200  # same status: no-op
    reopened = await move("open")
    assert reopened.status_code == 200
    assert reopened.json()["closed_at"] is None
    assert (await move("in_progress")).status_code == 200
    assert (await move("open")).json()["code"] == "invalid_transition"
    version = (await client.get(url, headers=headers)).headers["ETag"]
    stale = await client.patch(url, headers={**headers, "If-Match": 'W/"1"'}, json={"title": "x"})
    assert stale.status_code == 412
    fresh = await client.patch(url, headers={**headers, "If-Match": version}, json={"title": "x"})
    assert fresh.status_code == 200


async def test_validation_limits(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    other = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    deep: Any = "leaf"
    for _ in range(50):
        deep = {"k": deep}
    cases = [
        ({"title": ""}, "title"),
        ({"title": "t" * 1_000_000}, "title"),
        ({"title": "t", "tags": [f"t{i}" for i in range(10_000)]}, "tags"),
        ({"title": "t", "metadata": deep}, "metadata"),
        ({"title": "t", "metadata": {"blob": "x" * 20_000}}, "metadata"),
        ({"title": "t", "assignee_id": str(other.owner.id)}, "assignee_id"),
        ({"title": "t", "status": "bogus"}, "status"),
        ({"title": "t", "priority": "whenever"}, "priority"),
    ]
    for body, field in cases:
        answer = await client.post("/api/v1/cases", headers=headers, json=body)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["errors"][0]["loc"][:2] == ["body", field]
    ok = await client.post(
        "/api/v1/cases",
        headers=headers,
        json={
            "title": "t",
            "assignee_id": str(tenant.users["member"].id),
            "metadata": {"a": {"b": [1, 2]}},
            "priority": "urgent",
            "tags": ["x", "x", "y"],
            "due_at": "2030-01-01T00:00:00Z",
        },
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["tags"] == ["x", "y"]
    assert ok.json()["metadata"] == {"a": {"b": [1, 2]}}
    listed = await client.get(
        "/api/v1/cases", headers=headers, params={"assignee_id": str(tenant.users["member"].id)}
    )
    assert [item["id"] for item in listed.json()["items"]] == [ok.json()["id"]]


async def test_list_filters_and_soft_delete(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    headers = bearer_headers(app, tenant.owner)
    member = bearer_headers(app, tenant.users["member"])
    a = (
        await client.post(
            "/api/v1/cases",
            headers=headers,
            json={"title": "Harbour survey", "tags": ["sea"], "priority": "high"},
        )
    ).json()
    b = (
        await client.post(
            "/api/v1/cases", headers=headers, json={"title": "Mountain audit", "status": "on_hold"}
        )
    ).json()
    assert [
        c["id"]
        for c in (
            await client.get("/api/v1/cases", headers=headers, params={"q": "harbour"})
        ).json()["items"]
    ] == [a["id"]]
    assert [
        c["id"]
        for c in (
            await client.get("/api/v1/cases", headers=headers, params={"status": "on_hold"})
        ).json()["items"]
    ] == [b["id"]]
    assert [
        c["id"]
        for c in (await client.get("/api/v1/cases", headers=headers, params={"tag": "sea"})).json()[
            "items"
        ]
    ] == [a["id"]]
    assert [
        c["id"]
        for c in (
            await client.get("/api/v1/cases", headers=headers, params={"priority": "high"})
        ).json()["items"]
    ] == [a["id"]]
    by_ref = await client.get("/api/v1/cases", headers=headers, params={"sort": "-reference"})
    assert [c["reference"] for c in by_ref.json()["items"]] == ["CASE-000002", "CASE-000001"]
    document = (await upload(client, headers, data={"case_id": a["id"]})).json()
    assert (await client.delete(f"/api/v1/cases/{a['id']}", headers=member)).status_code == 403
    assert (await client.delete(f"/api/v1/cases/{a['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"/api/v1/cases/{a['id']}", headers=headers)).status_code == 404
    assert (await client.get("/api/v1/cases", headers=headers)).json()["total"] == 1
    assert (
        await client.get("/api/v1/cases?include_deleted=true", headers=member)
    ).status_code == 403
    assert (await client.get("/api/v1/cases?include_deleted=true", headers=headers)).json()[
        "total"
    ] == 2
    still = await client.get(f"/api/v1/documents/{document['id']}", headers=headers)
    assert still.status_code == 200
    assert still.json()["case_id"] == a["id"]
    restored = await client.post(f"/api/v1/cases/{a['id']}/restore", headers=headers)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None


async def test_documents_and_timeline(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    other = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    first = (await client.post("/api/v1/cases", headers=headers, json={"title": "A"})).json()
    second = (await client.post("/api/v1/cases", headers=headers, json={"title": "B"})).json()
    document = (await upload(client, headers)).json()
    theirs = (await upload(client, bearer_headers(app, other.owner))).json()
    attach = await client.post(
        f"/api/v1/cases/{first['id']}/documents",
        headers=headers,
        json={"document_id": document["id"]},
    )
    assert attach.status_code == 200
    assert attach.json()["case_id"] == first["id"]
    foreign = await client.post(
        f"/api/v1/cases/{first['id']}/documents",
        headers=headers,
        json={"document_id": theirs["id"]},
    )
    assert foreign.status_code == 422
    listed = await client.get(f"/api/v1/cases/{first['id']}/documents", headers=headers)
    assert [item["id"] for item in listed.json()["items"]] == [document["id"]]
    moved = await client.post(
        f"/api/v1/cases/{second['id']}/documents",
        headers=headers,
        json={"document_id": document["id"]},
    )
    assert moved.json()["case_id"] == second["id"]
    assert (await client.get(f"/api/v1/cases/{first['id']}/documents", headers=headers)).json()[
        "total"
    ] == 0
    await client.patch(f"/api/v1/cases/{second['id']}", headers=headers, json={"priority": "low"})
    timeline = await client.get(f"/api/v1/cases/{second['id']}/timeline", headers=headers)
    actions = [event["action"] for event in timeline.json()["items"]]
    assert actions[0] == "case.created"
    assert "document.created" in actions
    assert "case.document_attached" in actions
    assert "case.updated" in actions
    detach = await client.delete(
        f"/api/v1/cases/{second['id']}/documents/{document['id']}", headers=headers
    )
    assert detach.status_code == 204
    assert (await client.get(f"/api/v1/documents/{document['id']}", headers=headers)).json()[
        "case_id"
    ] is None
    again = await client.delete(
        f"/api/v1/cases/{second['id']}/documents/{document['id']}", headers=headers
    )
    assert again.status_code == 404
    other_view = await client.get(
        f"/api/v1/cases/{second['id']}", headers=bearer_headers(app, other.owner)
    )
    assert other_view.status_code == 404
