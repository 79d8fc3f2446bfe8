"""Storage cannot be filled behind the quota: open resumable uploads reserve
their declared size (released at complete or abort), job artifacts count,
segment files count and the scan routes that write them stop at the quota,
and a tenant has at most MAX_OPEN_UPLOADS open uploads."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
from sqlalchemy import text

from backend.kit.db import system_scope
from tests.documents.helpers import upload as direct_upload
from tests.factories import bearer_headers, make_tenant, run_sql
from tests.jobs.helpers import running_worker, wait_for_job
from tests.scans.helpers import analysed_mesh, wait_segmentation
from tests.scans.meshes import encode, open_shell


def _pdf(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


async def _quota(app: Any, tenant_id: Any, storage_bytes: int) -> None:
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            await session.execute(
                text("UPDATE tenants SET limits = CAST(:limits AS jsonb) WHERE id = :id"),
                {"limits": f'{{"storage_bytes": {storage_bytes}}}', "id": tenant_id},
            )


async def _declare(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> Any:
    return await client.post(
        "/api/v1/uploads",
        headers=headers,
        json={"filename": "a.pdf", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )


async def test_open_uploads_reserve_their_declared_size(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    await _quota(app, tenant.id, 3000)
    data = _pdf(1000)
    reservations = [await _declare(client, headers, _pdf(1000)) for _ in range(3)]
    assert [answer.status_code for answer in reservations] == [201, 201, 201]
    # The quota is taken by promises: no route may add a byte now.
    over = await _declare(client, headers, data)
    assert over.status_code == 413
    assert over.json()["code"] == "quota_exceeded"
    direct = await direct_upload(client, headers, _pdf(500))
    assert direct.status_code == 413
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] == 3000
    # Abort releases a reservation.
    first = reservations[0].json()["id"]
    assert (await client.delete(f"/api/v1/uploads/{first}", headers=headers)).status_code == 204
    assert (await direct_upload(client, headers, _pdf(900))).status_code == 201
    # Complete turns a reservation into the document's own bytes (not twice).
    second = reservations[1].json()
    content = _pdf(1000)
    await client.delete(f"/api/v1/uploads/{second['id']}", headers=headers)
    again = await _declare(client, headers, content)
    assert again.status_code == 201, again.text
    upload_id = again.json()["id"]
    put = await client.put(f"/api/v1/uploads/{upload_id}/parts/1", headers=headers, content=content)
    assert put.status_code == 200, put.text
    done = await client.post(f"/api/v1/uploads/{upload_id}/complete", headers=headers)
    assert done.status_code == 201, done.text
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] == 900 + 1000 + 1000  # two documents, one open upload


async def test_job_artifacts_count_in_the_quota(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    await _quota(app, tenant.id, 2000)
    assert (await direct_upload(client, headers, _pdf(1000))).status_code == 201
    job = await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)
    await run_sql(
        app,
        "INSERT INTO job_artifacts (id, tenant_id, job_id, name, storage_key, content_type, "
        "size, sha256, created_at, updated_at) VALUES (gen_random_uuid(), :tenant, :job, "
        "'export.zip', 'k', 'application/zip', 900, '', now(), now())",
        tenant=tenant.id,
        job=job.json()["id"],
    )
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] == 1900
    assert (await direct_upload(client, headers, _pdf(200))).status_code == 413


async def test_segment_files_count_and_scan_routes_stop_at_the_quota(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    mesh = encode(open_shell().mesh, "ply-binary")
    case_id, document_id = await analysed_mesh(client, app, headers, mesh, "ply-binary")
    url = f"/api/v1/cases/{case_id}/segmentations"
    created = await client.post(url, headers=headers, json={"document_id": document_id})
    async with running_worker(app):
        done = await wait_segmentation(client, headers, created.json()["id"])
    assert done["status"] == "succeeded"
    segments = (await client.get(f"/api/v1/cases/{case_id}/segments", headers=headers)).json()
    files = [
        await client.get(f"/api/v1/segments/{segment['id']}/download/stl", headers=headers)
        for segment in segments["items"]
    ]
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] == len(mesh) + sum(len(file.content) for file in files)
    await _quota(app, tenant.id, usage["storage_bytes"])
    # Full: no route adds a byte — not an upload, a conversion (signed link
    # or not) nor a segmentation.
    assert (await direct_upload(client, headers, _pdf(100))).status_code == 413
    segment = f"/api/v1/segments/{segments['items'][0]['id']}"
    converted = await client.get(f"{segment}/download/obj", headers=headers)
    link = await client.get(f"{segment}/download-url", headers=headers, params={"format": "glb"})
    signed = await client.get(link.json()["url"])
    for refused in (converted, signed):
        assert refused.status_code == 413, refused.text
        assert refused.json()["code"] == "quota_exceeded"
    again = await client.post(
        url, headers=headers, json={"document_id": document_id, "min_faces": 10}
    )
    async with running_worker(app):
        failed = await wait_segmentation(client, headers, again.json()["id"])
        job = await wait_for_job(client, headers, failed["job_id"])
    assert job["status"] == "failed"
    assert "storage quota" in job["error"]
    after = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert after["storage_bytes"] == usage["storage_bytes"]


async def test_a_tenant_has_at_most_max_open_uploads(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    limit = app.state.settings.max_open_uploads
    for _ in range(limit):
        assert (await _declare(client, headers, _pdf(100))).status_code == 201
    refused = await _declare(client, headers, _pdf(100))
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_open_uploads"
