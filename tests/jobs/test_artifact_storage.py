"""Job artifacts are storage like any other: a retried job's replaced
artifact deletes its blob, and an artifact past the tenant's quota fails its
job and leaves nothing on disk."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from backend.kit.db import system_scope, tenant_scope
from backend.kit.storage import get_storage
from backend.tenants.storage_quota import lock_tenant_storage
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job


def _blobs(app: Any, tenant_id: Any) -> list[str]:
    root = get_storage(app.state.settings).root / "tenants" / str(tenant_id) / "jobs"  # type: ignore[attr-defined]
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def _artifact_job(
    client: httpx.AsyncClient, app: Any, size: int
) -> tuple[Any, dict[str, str], str]:
    """A new tenant, its owner's headers and its queued `test.artifact` job."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    job = await client.post(
        "/api/v1/jobs", json={"type": "test.artifact", "payload": {"size": size}}, headers=headers
    )
    return tenant, headers, job.json()["id"]


async def test_a_retried_jobs_replaced_artifact_deletes_its_blob(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant, headers, job_id = await _artifact_job(client, app, 2000)
    async with running_worker(app, concurrency=1):
        assert (await wait_for_job(client, headers, job_id))["status"] == "succeeded"
        first = _blobs(app, tenant.id)
        assert len(first) == 1
        with system_scope("tests"):
            async with app.state.db.transaction() as session:
                await session.execute(
                    text("UPDATE jobs SET status = 'failed' WHERE id = :id"), {"id": job_id}
                )
        assert (
            await client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)
        ).status_code == 200
        assert (await wait_for_job(client, headers, job_id))["status"] == "succeeded"
    second = _blobs(app, tenant.id)
    assert len(second) == 1
    assert second != first
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] == 2000


async def test_an_artifact_past_the_quota_fails_its_job(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            await session.execute(
                text("UPDATE tenants SET limits = '{\"storage_bytes\": 5000}' WHERE id = :id"),
                {"id": tenant.id},
            )
    job = await client.post(
        "/api/v1/jobs", json={"type": "test.artifact", "payload": {"size": 6000}}, headers=headers
    )
    async with running_worker(app, concurrency=1):
        done = await wait_for_job(client, headers, job.json()["id"])
    assert done["status"] == "failed"
    assert "storage quota" in done["error"]
    assert done["attempts"] == 1
    assert _blobs(app, tenant.id) == []


async def test_artifacts_are_purged_with_their_job(client: httpx.AsyncClient, app: Any) -> None:
    """A job deleted past retention goes with the admin purge, and so do its
    artifact rows (cascade) and blobs (after the commit); a live job's stay."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    root = bearer_headers(app, (await make_tenant(app, "Platform", superadmin=True)).owner)
    ids = []
    for _ in range(2):
        job = await client.post(
            "/api/v1/jobs",
            json={"type": "test.artifact", "payload": {"size": 1000}},
            headers=headers,
        )
        ids.append(job.json()["id"])
    async with running_worker(app, concurrency=1):
        for job_id in ids:
            assert (await wait_for_job(client, headers, job_id))["status"] == "succeeded"
    assert len(_blobs(app, tenant.id)) == 2
    doomed, kept = ids
    assert (await client.delete(f"/api/v1/jobs/{doomed}", headers=headers)).status_code == 204
    days = app.state.settings.soft_delete_retention_days
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            await session.execute(
                text(
                    "UPDATE jobs SET deleted_at = now() - make_interval(days => :d) WHERE id = :id"
                ),
                {"d": days + 1, "id": doomed},
            )
    response = await client.post("/api/v1/admin/purge", headers=root)
    assert response.status_code == 200, response.text
    assert response.json()["purged"]["jobs"] == 1
    blobs = _blobs(app, tenant.id)
    assert len(blobs) == 1
    assert f"/jobs/{kept}/" in blobs[0]
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            rows = (await session.execute(text("SELECT job_id FROM job_artifacts"))).scalars()
            assert [str(row) for row in rows] == [kept]
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] == 1000


async def test_an_artifact_waits_for_the_tenants_storage_lock(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Artifacts check the quota under the tenant's storage lock, as every
    writer does: while another writer holds it (a document being created),
    the artifact waits, so neither can pass the quota on bytes the other has
    not committed yet."""
    tenant, headers, job_id = await _artifact_job(client, app, 100)
    async with running_worker(app, concurrency=1):
        with tenant_scope(tenant.id):
            async with app.state.db.transaction() as session:
                await lock_tenant_storage(session, tenant.id)
                for _ in range(200):  # claimed by the worker
                    waiting = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
                    if waiting["status"] != "queued":
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                waiting = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
                assert waiting["status"] == "running"
                assert _blobs(app, tenant.id) == []
        assert (await wait_for_job(client, headers, job_id))["status"] == "succeeded"
    assert len(_blobs(app, tenant.id)) == 1
