"""Segment files are storage like any other: a segmentation or a format
conversion past the tenant's quota stores nothing (the job fails for good,
the conversion answers 413 `quota_exceeded`), and a tenant under it works;
segmentations follow their mesh document: hidden while it is soft-deleted,
back with it, purged with it (rows and every blob)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.scans import tasks as scan_tasks
from tests.factories import bearer_headers, make_tenant, run_sql
from tests.jobs.helpers import running_worker, wait_for_job
from tests.scans.helpers import (
    analysed_mesh,
    analysis_job,
    make_case,
    segment_blobs,
    staged_blobs,
    upload_mesh,
    wait_segmentation,
)
from tests.scans.meshes import disjoint_bodies, encode, open_shell

BODIES = disjoint_bodies()
SHELL = open_shell()


async def _usage(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    tenant = (await client.get("/api/v1/tenant", headers=headers)).json()
    return int(tenant["usage"]["storage_bytes"])


async def _quota(app: Any, tenant_id: Any, storage_bytes: int) -> None:
    await run_sql(
        app,
        "UPDATE tenants SET limits = jsonb_build_object('storage_bytes', CAST(:b AS bigint)) "
        "WHERE id = :id",
        b=storage_bytes,
        id=tenant_id,
    )


async def _segmented(
    client: httpx.AsyncClient,
    app: Any,
    headers: dict[str, str],
    meshes: list[tuple[bytes, str]],
    formats: list[str],
) -> tuple[str, list[dict[str, Any]]]:
    """A case holding one analysed, segmented document per mesh; the
    segmentations (succeeded), in the order of `meshes`."""
    case_id = await make_case(client, headers)
    documents = [await upload_mesh(client, headers, data, kind, case_id) for data, kind in meshes]
    async with running_worker(app):
        for document in documents:
            job = await wait_for_job(
                client, headers, await analysis_job(client, headers, document["id"]), timeout=60
            )
            assert job["status"] == "succeeded"
        created = [
            await client.post(
                f"/api/v1/cases/{case_id}/segmentations",
                headers=headers,
                json={"document_id": document["id"], "min_faces": 50, "formats": formats},
            )
            for document in documents
        ]
        done = [await wait_segmentation(client, headers, answer.json()["id"]) for answer in created]
    assert [run["status"] for run in done] == ["succeeded"] * len(meshes), done
    return case_id, done


async def test_a_segmentation_past_the_quota_fails_and_stores_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id, document_id = await analysed_mesh(
        client, app, headers, encode(BODIES.mesh, "stl-binary"), "stl-binary"
    )
    used = await _usage(client, headers)
    # Nearly full: the segments (about the mesh's size in STL alone) cannot fit.
    await _quota(app, tenant.id, used + 1000)
    staging = await staged_blobs(app)
    url = f"/api/v1/cases/{case_id}/segmentations"
    body = {"document_id": document_id, "formats": ["stl", "ply"]}
    created = await client.post(url, headers=headers, json=body)
    assert created.status_code == 202, created.text
    async with running_worker(app):
        failed = await wait_segmentation(client, headers, created.json()["id"])
        job = await wait_for_job(client, headers, failed["job_id"])
    assert failed["status"] == "failed"
    assert "would exceed the tenant's storage quota" in failed["error"]
    assert f"of {used + 1000} bytes" in failed["error"]
    assert job["status"] == "failed"
    assert job["attempts"] == 1  # not retried
    assert job["error"] == failed["error"]
    assert failed["segment_count"] == 0
    segments = await client.get(f"/api/v1/cases/{case_id}/segments", headers=headers)
    assert segments.json()["items"] == []
    assert await segment_blobs(app, tenant.id) == []
    assert await staged_blobs(app) <= staging
    assert await _usage(client, headers) == used

    # Under the quota the same request runs again and stores its files.
    await _quota(app, tenant.id, used + 10_000_000)
    again = await client.post(url, headers=headers, json=body)
    assert again.status_code == 202, again.text
    async with running_worker(app):
        done = await wait_segmentation(client, headers, again.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["segment_count"] == len(BODIES.parts)
    assert len(await segment_blobs(app, tenant.id)) == 2 * len(BODIES.parts)
    assert await _usage(client, headers) > used


async def test_the_quota_is_checked_again_on_the_bytes_actually_stored(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check under the tenant's storage lock, just before the segments
    commit, counts the staged files: past the quota they are discarded."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id, document_id = await analysed_mesh(
        client, app, headers, encode(SHELL.mesh, "ply-binary"), "ply-binary"
    )
    used = await _usage(client, headers)
    await _quota(app, tenant.id, used + 100)
    # The first check sees nothing to store (as if the quota filled up
    # between the two checks); the files are staged, then refused.
    monkeypatch.setattr(scan_tasks, "_written", lambda parts: 0)
    staging = await staged_blobs(app)
    created = await client.post(
        f"/api/v1/cases/{case_id}/segmentations",
        headers=headers,
        json={"document_id": document_id, "min_faces": 50},
    )
    async with running_worker(app):
        failed = await wait_segmentation(client, headers, created.json()["id"])
    assert failed["status"] == "failed"
    assert "storage quota" in failed["error"]
    assert await segment_blobs(app, tenant.id) == []
    assert await staged_blobs(app) <= staging
    assert await _usage(client, headers) == used


async def test_a_rerun_replaces_its_earlier_files_within_a_full_quota(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A segmentation run again (its job retried) replaces its segments: the
    earlier files' bytes are credited against the quota and their blobs go."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    _, (segmentation,) = await _segmented(
        client, app, headers, [(encode(SHELL.mesh, "ply-binary"), "ply-binary")], ["stl", "ply"]
    )
    first = await segment_blobs(app, tenant.id)
    used = await _usage(client, headers)
    await _quota(app, tenant.id, used)  # full
    job_id = segmentation["job_id"]
    await run_sql(app, "UPDATE jobs SET status = 'failed' WHERE id = :id", id=job_id)
    retried = await client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)
    assert retried.status_code == 200, retried.text
    async with running_worker(app):
        assert (await wait_for_job(client, headers, job_id, timeout=60))["status"] == "succeeded"
    again = (
        await client.get(f"/api/v1/segmentations/{segmentation['id']}", headers=headers)
    ).json()
    assert again["status"] == "succeeded"
    assert again["segment_count"] == segmentation["segment_count"]
    second = await segment_blobs(app, tenant.id)
    assert len(second) == len(first)
    assert not set(second) & set(first)
    assert await _usage(client, headers) == used


async def test_a_conversion_past_the_quota_is_refused_and_leaves_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    _, (segmentation,) = await _segmented(
        client, app, headers, [(encode(SHELL.mesh, "ply-binary"), "ply-binary")], ["stl"]
    )
    segments = await client.get(
        f"/api/v1/cases/{segmentation['case_id']}/segments", headers=headers
    )
    segment = segments.json()["items"][0]
    used = await _usage(client, headers)
    blobs = await segment_blobs(app, tenant.id)
    staging = await staged_blobs(app)
    await _quota(app, tenant.id, used + 100)  # an OBJ of the segment is larger
    download = f"/api/v1/segments/{segment['id']}/download"
    refused = await client.get(f"{download}/obj", headers=headers)
    assert refused.status_code == 413, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "quota_exceeded"
    assert problem["detail"].startswith("This segment as OBJ (")
    assert problem["storage_bytes"] == used + 100
    assert problem["used_bytes"] == used
    got = (await client.get(f"/api/v1/segments/{segment['id']}", headers=headers)).json()
    assert got["formats"] == ["stl"]
    assert await segment_blobs(app, tenant.id) == blobs
    assert await staged_blobs(app) <= staging
    assert await _usage(client, headers) == used
    # What is stored still downloads at a full quota.
    assert (await client.get(f"{download}/stl", headers=headers)).status_code == 200

    await _quota(app, tenant.id, used + 10_000_000)
    converted = await client.get(f"{download}/obj", headers=headers)
    assert converted.status_code == 200, converted.text
    assert await _usage(client, headers) == used + len(converted.content)
    assert len(await segment_blobs(app, tenant.id)) == len(blobs) + 1


async def test_a_deleted_documents_segmentations_are_hidden_until_it_is_restored(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id, (gone, kept) = await _segmented(
        client,
        app,
        headers,
        [(encode(SHELL.mesh, "ply-binary"), "ply-binary"), (encode(BODIES.mesh, "obj"), "obj")],
        ["stl"],
    )
    segments_url = f"/api/v1/cases/{case_id}/segments"
    all_segments = (await client.get(segments_url, headers=headers)).json()["items"]
    hidden = [s for s in all_segments if s["segmentation_id"] == gone["id"]]
    shown = [s for s in all_segments if s["segmentation_id"] == kept["id"]]
    assert hidden
    assert shown
    segment = f"/api/v1/segments/{hidden[0]['id']}"
    link = await client.get(f"{segment}/download-url", headers=headers, params={"format": "stl"})
    signed = link.json()["url"]
    summary_url = f"/api/v1/cases/{case_id}/segments/summary"
    before = (await client.get(summary_url, headers=headers)).json()

    deleted = await client.delete(f"/api/v1/documents/{gone['document_id']}", headers=headers)
    assert deleted.status_code == 204
    assert (
        await client.get(f"/api/v1/segmentations/{gone['id']}", headers=headers)
    ).status_code == 404
    runs = await client.get(f"/api/v1/cases/{case_id}/segmentations", headers=headers)
    assert [run["id"] for run in runs.json()["items"]] == [kept["id"]]
    listed = (await client.get(segments_url, headers=headers)).json()["items"]
    assert [s["id"] for s in listed] == [s["id"] for s in shown]
    filtered = await client.get(
        segments_url, headers=headers, params={"segmentation_id": gone["id"], "page": 1}
    )
    assert filtered.json()["total"] == 0
    assert (await client.get(segment, headers=headers)).status_code == 404
    patched = await client.patch(segment, headers=headers, json={"label": "gone"})
    assert patched.status_code == 404
    assert (await client.get(f"{segment}/download/stl", headers=headers)).status_code == 404
    assert (await client.get(f"{segment}/download/glb", headers=headers)).status_code == 404
    assert (
        await client.get(f"{segment}/download-url", headers=headers, params={"format": "stl"})
    ).status_code == 404
    assert (await client.get(signed)).status_code == 404
    summary = (await client.get(summary_url, headers=headers)).json()
    assert summary["count"] == len(shown)
    assert [run["id"] for run in summary["by_segmentation"]] == [kept["id"]]
    # A new segmentation of the deleted document is refused.
    again = await client.post(
        f"/api/v1/cases/{case_id}/segmentations",
        headers=headers,
        json={"document_id": gone["document_id"]},
    )
    assert again.status_code == 422

    restored = await client.post(
        f"/api/v1/documents/{gone['document_id']}/restore", headers=headers
    )
    assert restored.status_code == 200, restored.text
    assert (await client.get(f"/api/v1/segmentations/{gone['id']}", headers=headers)).json()[
        "segment_count"
    ] == len(hidden)
    assert (await client.get(segments_url, headers=headers)).json()["items"] == all_segments
    assert (await client.get(summary_url, headers=headers)).json() == before
    assert (await client.get(signed)).status_code == 200


async def test_purging_a_mesh_document_purges_its_segmentations_and_every_blob(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Past retention a deleted document's segmentations, segments, files
    and blobs (those the job wrote and converted downloads) go with it;
    another document's stay until their tenant is purged."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    root = bearer_headers(app, (await make_tenant(app, "Platform", superadmin=True)).owner)
    case_id, (gone, kept) = await _segmented(
        client,
        app,
        headers,
        [(encode(SHELL.mesh, "ply-binary"), "ply-binary"), (encode(BODIES.mesh, "obj"), "obj")],
        ["stl", "ply"],
    )
    segments = (await client.get(f"/api/v1/cases/{case_id}/segments", headers=headers)).json()
    doomed = [s["id"] for s in segments["items"] if s["segmentation_id"] == gone["id"]]
    converted = await client.get(f"/api/v1/segments/{doomed[0]}/download/glb", headers=headers)
    assert converted.status_code == 200
    blobs = await segment_blobs(app, tenant.id)
    assert len(blobs) == 2 * len(segments["items"]) + 1
    assert (
        await client.delete(f"/api/v1/documents/{gone['document_id']}", headers=headers)
    ).status_code == 204
    days = app.state.settings.soft_delete_retention_days
    await run_sql(
        app,
        "UPDATE documents SET deleted_at = now() - make_interval(days => :d) WHERE id = :id",
        d=days + 1,
        id=gone["document_id"],
    )
    purged = await client.post("/api/v1/admin/purge", headers=root)
    assert purged.status_code == 200, purged.text
    assert purged.json()["purged"]["scans"] == 1
    left = await segment_blobs(app, tenant.id)
    assert left == [blob for blob in blobs if not any(f"/{s}/" in blob for s in doomed)]
    assert len(left) == 2 * (len(segments["items"]) - len(doomed))
    rows = await run_sql(
        app,
        "SELECT (SELECT count(*) FROM segmentations WHERE id = :s), "
        "(SELECT count(*) FROM segments WHERE segmentation_id = :s), "
        "(SELECT count(*) FROM segment_files WHERE segment_id = ANY(CAST(:ids AS uuid[])))",
        s=gone["id"],
        ids=doomed,
    )
    assert tuple(rows[0]) == (0, 0, 0)
    assert (
        await client.get(f"/api/v1/segmentations/{kept['id']}", headers=headers)
    ).status_code == 200

    # A purged tenant's segmentations and blobs all go.
    assert (
        await client.delete(f"/api/v1/admin/tenants/{tenant.id}", headers=root)
    ).status_code == 204
    await run_sql(
        app,
        "UPDATE tenants SET deleted_at = now() - make_interval(days => :d) WHERE id = :id",
        d=days + 1,
        id=tenant.id,
    )
    purged = await client.post("/api/v1/admin/purge", headers=root)
    assert purged.status_code == 200, purged.text
    assert purged.json()["purged"]["scans"] == 1
    assert await segment_blobs(app, tenant.id) == []
