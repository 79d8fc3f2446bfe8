"""The jobs API: types, creation (schema, references, idempotency), lists,
cancel, retry, delete, logs, stats, batches, permissions and isolation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import make_case, make_document


async def _job(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("type", "test.noop")
    answer = await client.post("/api/v1/jobs", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/api/v1/jobs/{answer.json()['id']}"
    return answer.json()  # type: ignore[no-any-return]


async def test_job_types_list_public_types_with_schemas(client: Any, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    answer = await client.get(
        "/api/v1/job-types", headers=bearer_headers(app, tenant.users["viewer"])
    )
    assert answer.status_code == 200
    types = {t["name"]: t for t in answer.json()}
    assert {"document.extract_text", "case.export"} <= set(types)
    assert "webhook.deliver" not in types
    assert types["document.extract_text"]["requires"] == ["document"]
    assert types["document.extract_text"]["payload_schema"]["type"] == "object"


async def test_create_validates_type_payload_and_references(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    other = await make_tenant(app, "Other")
    headers = bearer_headers(app, tenant.owner)

    unknown = await client.post("/api/v1/jobs", json={"type": "nope"}, headers=headers)
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "validation_error"

    bad = await client.post(
        "/api/v1/jobs", json={"type": "test.work", "payload": {"sleep": "long"}}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "payload", "sleep"]

    internal = await client.post(
        "/api/v1/jobs",
        json={"type": "webhook.deliver", "payload": {"delivery_id": str(uuid.uuid4())}},
        headers=headers,
    )
    assert internal.status_code == 422

    missing = await client.post(
        "/api/v1/jobs", json={"type": "document.extract_text"}, headers=headers
    )
    assert missing.status_code == 422

    foreign = await make_document(app, other.id, b"their text")
    theirs = await client.post(
        "/api/v1/jobs",
        json={"type": "document.extract_text", "document_id": str(foreign)},
        headers=headers,
    )
    assert theirs.status_code == 404

    mine = await make_document(app, tenant.id, b"my text")
    job = await _job(
        client, headers, type="document.extract_text", document_id=str(mine), priority=5
    )
    assert job["status"] == "queued"
    assert job["document_id"] == str(mine)
    assert job["priority"] == 5
    assert job["max_attempts"] == 3

    out_of_range = await client.post(
        "/api/v1/jobs", json={"type": "test.noop", "priority": 11}, headers=headers
    )
    assert out_of_range.status_code == 422


async def test_idempotency_key(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    other = await make_tenant(app, "Other")
    headers = {**bearer_headers(app, tenant.owner), "Idempotency-Key": "abc-123"}
    first = await client.post(
        "/api/v1/jobs", json={"type": "test.noop", "payload": {"a": 1}}, headers=headers
    )
    assert first.status_code == 202
    again = await client.post(
        "/api/v1/jobs", json={"type": "test.noop", "payload": {"a": 1}}, headers=headers
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    different = await client.post(
        "/api/v1/jobs", json={"type": "test.noop", "payload": {"a": 2}}, headers=headers
    )
    assert different.status_code == 409
    assert different.json()["code"] == "idempotency_conflict"
    # Keys are per tenant.
    theirs = await client.post(
        "/api/v1/jobs",
        json={"type": "test.noop", "payload": {"a": 2}},
        headers={**bearer_headers(app, other.owner), "Idempotency-Key": "abc-123"},
    )
    assert theirs.status_code == 202


async def test_expired_idempotency_key_is_free_again(
    client: Any, app: Any, owner_engine: Any
) -> None:
    tenant = await make_tenant(app)
    headers = {**bearer_headers(app, tenant.owner), "Idempotency-Key": "old"}
    first = await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE jobs SET created_at = now() - interval '25 hours' WHERE id = :id"),
            {"id": first.json()["id"]},
        )
    second = await client.post(
        "/api/v1/jobs", json={"type": "test.noop", "payload": {"x": 1}}, headers=headers
    )
    assert second.status_code == 202
    assert second.json()["id"] != first.json()["id"]


async def test_list_filters_and_both_paginations(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    other = await make_tenant(app, "Other")
    headers = bearer_headers(app, tenant.owner)
    for index in range(3):
        await _job(client, headers, payload={"i": index})
    await _job(client, headers, type="test.work", payload={})
    await _job(client, bearer_headers(app, other.owner))

    page = (await client.get("/api/v1/jobs", headers=headers)).json()
    assert page["total"] == 4
    by_type = (await client.get("/api/v1/jobs?type=test.work", headers=headers)).json()
    assert [j["type"] for j in by_type["items"]] == ["test.work"]
    queued = (await client.get("/api/v1/jobs?status=queued&page_size=2", headers=headers)).json()
    assert queued["total"] == 4
    assert len(queued["items"]) == 2
    assert queued["pages"] == 2
    first = (await client.get("/api/v1/jobs?limit=3&sort=created_at", headers=headers)).json()
    assert len(first["items"]) == 3
    assert first["next_cursor"]
    rest = (
        await client.get(
            f"/api/v1/jobs?limit=3&sort=created_at&cursor={first['next_cursor']}", headers=headers
        )
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    bad = await client.get("/api/v1/jobs?status=nope", headers=headers)
    assert bad.status_code == 422


async def test_cancel_retry_delete_and_logs(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    job = await _job(client, headers)

    cancelled = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"

    retried = await client.post(f"/api/v1/jobs/{job['id']}/retry", headers=headers)
    assert retried.status_code == 200
    assert retried.json()["status"] == "queued"
    assert retried.json()["attempts"] == 0
    not_retryable = await client.post(f"/api/v1/jobs/{job['id']}/retry", headers=headers)
    assert not_retryable.status_code == 409

    logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
    messages = [line["message"] for line in logs["items"]]
    assert any("Cancel requested" in m for m in messages)
    assert any("Retried" in m for m in messages)
    assert set(logs["items"][0]) == {"at", "level", "message", "attempt", "request_id"}

    deleted = await client.delete(f"/api/v1/jobs/{job['id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).status_code == 404

    actions = (await client.get("/api/v1/audit-events?resource_type=job", headers=headers)).json()
    assert {"job.created", "job.cancelled", "job.retried", "job.deleted"} <= {
        e["action"] for e in actions["items"]
    }


async def test_running_job_cannot_be_deleted(client: Any, app: Any, owner_engine: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    job = await _job(client, headers)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE jobs SET status = 'running' WHERE id = :id"), {"id": job["id"]}
        )
    assert (await client.delete(f"/api/v1/jobs/{job['id']}", headers=headers)).status_code == 409
    cancel = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "running"
    assert cancel.json()["cancel_requested"] is True


async def test_stats(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    await _job(client, headers)
    second = await _job(client, headers, type="test.work")
    await client.post(f"/api/v1/jobs/{second['id']}/cancel", headers=headers)
    stats = (await client.get("/api/v1/jobs/stats", headers=headers)).json()
    assert stats["by_status"]["queued"] == 1
    assert stats["by_status"]["cancelled"] == 1
    assert stats["by_type"] == {"test.noop": {"queued": 1}, "test.work": {"cancelled": 1}}
    assert stats["oldest_queued_age_seconds"] >= 0


async def test_batches(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post(
        "/api/v1/batches",
        json={"type": "test.work", "items": [{"payload": {}}, {"payload": {"steps": 2}}]},
        headers=headers,
    )
    assert created.status_code == 202, created.text
    batch = created.json()
    assert len(batch["job_ids"]) == 2
    summary = (await client.get(f"/api/v1/batches/{batch['id']}", headers=headers)).json()
    assert summary["total"] == 2
    assert summary["by_status"]["queued"] == 2
    assert summary["done"] is False
    assert summary["progress"] == 0
    listed = (await client.get(f"/api/v1/jobs?batch_id={batch['id']}", headers=headers)).json()
    assert listed["total"] == 2

    invalid = await client.post(
        "/api/v1/batches",
        json={"type": "test.work", "items": [{"payload": {}}, {"payload": {"steps": "x"}}]},
        headers=headers,
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"][:3] == ["body", "items", 1]
    assert (await client.get("/api/v1/jobs", headers=headers)).json()["total"] == 2


async def test_a_batch_whose_jobs_were_deleted_is_done(client: Any, app: Any) -> None:
    """Deleting a queued job cancels it; the batch still counts it."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post(
        "/api/v1/batches",
        json={"type": "test.work", "items": [{"payload": {}}, {"payload": {}}]},
        headers=headers,
    )
    batch = created.json()
    for job_id in batch["job_ids"]:
        assert (await client.delete(f"/api/v1/jobs/{job_id}", headers=headers)).status_code == 204
    summary = (await client.get(f"/api/v1/batches/{batch['id']}", headers=headers)).json()
    assert summary["by_status"]["cancelled"] == 2
    assert summary["done"] is True
    assert summary["progress"] == 100


async def test_permissions_and_isolation(client: Any, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member", "viewer"))
    other = await make_tenant(app, "Other")
    job = await _job(client, bearer_headers(app, tenant.owner))
    viewer = bearer_headers(app, tenant.users["viewer"])
    member = bearer_headers(app, tenant.users["member"])
    assert (await client.get(f"/api/v1/jobs/{job['id']}", headers=viewer)).status_code == 200
    assert (
        await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=viewer)
    ).status_code == 403
    assert (
        await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=viewer)
    ).status_code == 403
    assert (
        await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=member)
    ).status_code == 202
    stranger = bearer_headers(app, other.owner)
    for method, path in [
        ("GET", f"/api/v1/jobs/{job['id']}"),
        ("POST", f"/api/v1/jobs/{job['id']}/cancel"),
        ("POST", f"/api/v1/jobs/{job['id']}/retry"),
        ("DELETE", f"/api/v1/jobs/{job['id']}"),
        ("GET", f"/api/v1/jobs/{job['id']}/logs"),
        ("GET", f"/api/v1/jobs/{job['id']}/artifacts/export.zip"),
    ]:
        answer = await client.request(method, path, headers=stranger)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert (await client.get("/api/v1/jobs")).status_code == 401


async def test_case_export_needs_a_case_of_the_tenant(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    other = await make_tenant(app, "Other")
    headers = bearer_headers(app, tenant.owner)
    theirs = await make_case(app, other.id)
    answer = await client.post(
        "/api/v1/jobs", json={"type": "case.export", "case_id": str(theirs)}, headers=headers
    )
    assert answer.status_code == 404
    mine = await make_case(app, tenant.id)
    await _job(client, headers, type="case.export", case_id=str(mine))


async def test_ready_and_metrics_report_the_queue(client: Any, app: Any, owner_engine: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    job = await _job(client, headers)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE jobs SET created_at = now() - interval '90 seconds' WHERE id = :id"),
            {"id": job["id"]},
        )
    ready = (await client.get("/ready")).json()
    assert ready["queue"]["queued"] == 1
    assert ready["queue"]["oldest_queued_age_seconds"] >= 90
    metrics = (await client.get("/metrics")).text
    assert 'dossier_jobs{status="queued",type="test.noop"} 1.0' in metrics
    assert "dossier_jobs_oldest_queued_age_seconds" in metrics


async def test_logs_carry_the_creating_request_id(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post(
        "/api/v1/jobs",
        headers={**headers, "X-Request-ID": "create-job-42"},
        json={"type": "test.noop", "payload": {}},
    )
    assert created.status_code == 202
    job_id = created.json()["id"]
    assert (await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)).status_code == 200
    logs = (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=headers)).json()["items"]
    assert logs[0]["message"].startswith("Created by user")
    assert logs[0]["request_id"] == "create-job-42"
    # Each line names the request that wrote it: the cancel is another request.
    assert logs[1]["message"].startswith("Cancel requested")
    assert logs[1]["request_id"] not in (None, "create-job-42")
