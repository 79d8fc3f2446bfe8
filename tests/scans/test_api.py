"""The scans workload through the API and a real worker: mesh uploads typed
by content and analysed, segmentations (both methods) against known truth,
idempotency and the duplicate guard, segments with FDI labels, downloads in
four formats (converted on first request and kept), signed links, the
summary, isolation and permissions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.scans.analysis import read_mesh
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job
from tests.scans.helpers import (
    analysed_mesh,
    analysis_job,
    events_of,
    make_case,
    upload_mesh,
    wait_segmentation,
)
from tests.scans.meshes import ENCODINGS, MIME, disjoint_bodies, encode, terraced

BODIES = disjoint_bodies()
TERRACED, _ = terraced()


async def test_meshes_upload_typed_by_content_and_analysed(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id = await make_case(client, headers)
    documents = {}
    for encoding in ENCODINGS:
        # Clients that say nothing about the type get it from the content.
        claimed = "application/octet-stream" if encoding == "stl-binary" else None
        document = await upload_mesh(
            client, headers, encode(BODIES.mesh, encoding), encoding, case_id, claimed
        )
        assert document["mime_type"] == MIME[encoding]
        documents[encoding] = document["id"]
    broken = await upload_mesh(
        client,
        headers,
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
        b"end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n",
        "ply-ascii",
        case_id,
    )
    # Every encoding is read by the engine tests; here three go through the
    # worker (binary and ASCII, three formats) and the others' jobs are cancelled.
    analysed = ("stl-binary", "ply-ascii", "glb")
    for encoding, document_id in documents.items():
        if encoding not in analysed:
            job_id = await analysis_job(client, headers, document_id)
            cancel = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)
            assert cancel.status_code == 200, cancel.text
    async with running_worker(app):
        for encoding in analysed:
            document_id = documents[encoding]
            job_id = await analysis_job(client, headers, document_id)
            job = await wait_for_job(client, headers, job_id, timeout=60)
            assert job["status"] == "succeeded", job
            document = (
                await client.get(f"/api/v1/documents/{document_id}", headers=headers)
            ).json()
            assert document["status"] == "processed"
            mesh = document["metadata"]["mesh"]
            assert mesh["format"] == encoding
            assert mesh["faces"] == len(BODIES.mesh.faces)
            assert mesh["components"] == BODIES.components
            assert mesh["watertight"] is True
            assert mesh["volume"] == pytest.approx(BODIES.mesh.volume, rel=1e-4)
            assert mesh["surface_area"] == pytest.approx(BODIES.mesh.area, rel=1e-4)
            assert mesh["extents"] == pytest.approx(list(BODIES.mesh.extents), rel=1e-5)
            assert set(mesh["bounds"]) == {"min", "max"}
        job = await wait_for_job(
            client, headers, await analysis_job(client, headers, broken["id"]), timeout=60
        )
    assert job["status"] == "failed"
    assert "vertex that does not exist" in job["error"]
    failed = (await client.get(f"/api/v1/documents/{broken['id']}", headers=headers)).json()
    assert failed["status"] == "failed"


async def test_components_segmentation_end_to_end(
    client: httpx.AsyncClient, app: Any, tmp_path: Path, redis: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    headers = bearer_headers(app, tenant.owner)
    case_id, document_id = await analysed_mesh(
        client, app, headers, encode(BODIES.mesh, "stl-binary"), "stl-binary"
    )
    url = f"/api/v1/cases/{case_id}/segmentations"
    body = {"document_id": document_id, "formats": ["stl", "ply"]}
    created = await client.post(url, headers=headers, json=body)
    assert created.status_code == 202, created.text
    segmentation = created.json()
    assert segmentation["status"] == "queued"
    assert segmentation["method"] == "components"
    assert segmentation["params"] == {"min_faces": 100, "formats": ["stl", "ply"]}
    # The same request while it is queued answers that one (duplicate guard).
    again = await client.post(url, headers=headers, json=body)
    assert again.status_code == 200
    assert again.json()["id"] == segmentation["id"]
    # An Idempotency-Key answers its first request, and refuses another body.
    keyed = {"Idempotency-Key": "segment-once", **headers}
    other = {"document_id": document_id, "min_faces": 50}
    first = await client.post(url, headers=keyed, json=other)
    assert first.status_code == 202, first.text
    repeat = await client.post(url, headers=keyed, json=other)
    assert repeat.status_code == 200
    assert repeat.json()["id"] == first.json()["id"]
    conflict = await client.post(url, headers=keyed, json={**other, "min_faces": 60})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"

    async with running_worker(app):
        done = await wait_segmentation(client, headers, segmentation["id"])
        await wait_segmentation(client, headers, first.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["segment_count"] == len(BODIES.parts)
    assert done["discarded_faces"] == BODIES.discarded_faces
    assert done["total_faces"] == len(BODIES.mesh.faces)
    completed = await events_of(redis, app, tenant.id, "segmentation.completed")
    assert segmentation["id"] in {event["segmentation_id"] for event in completed}
    (event,) = [e for e in completed if e["segmentation_id"] == segmentation["id"]]
    assert event["segment_count"] == len(BODIES.parts)
    assert event["case_id"] == case_id

    listed = await client.get(
        f"/api/v1/cases/{case_id}/segments",
        headers=headers,
        params={"segmentation_id": segmentation["id"]},
    )
    assert listed.status_code == 200
    segments = listed.json()["items"]
    assert [s["faces"] for s in segments] == [p.faces for p in BODIES.parts]
    for got, want in zip(segments, BODIES.parts, strict=True):
        assert got["watertight"] is True
        assert got["volume"] == pytest.approx(want.volume, rel=1e-4)
        assert got["surface_area"] == pytest.approx(want.surface_area, rel=1e-4)
        assert want.bounds is not None
        assert got["bounds"]["min"] == pytest.approx(list(want.bounds[0]), abs=1e-4)
        assert sorted(got["formats"]) == ["ply", "stl"]

    segment = segments[1]
    for format in ("stl", "ply", "obj", "glb"):
        answer = await client.get(
            f"/api/v1/segments/{segment['id']}/download/{format}", headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["etag"].startswith('"')
        path = tmp_path / f"segment.{format}"
        path.write_bytes(answer.content)
        kind, mesh = read_mesh(path)
        assert kind.format == format
        assert len(mesh.faces) == segment["faces"]
        assert len(mesh.vertices) == segment["vertices"]
    kept = (await client.get(f"/api/v1/segments/{segment['id']}", headers=headers)).json()
    assert kept["formats"] == ["glb", "obj", "ply", "stl"]  # converted once, then kept
    ranged = await client.get(
        f"/api/v1/segments/{segment['id']}/download/obj", headers={**headers, "Range": "bytes=0-9"}
    )
    assert ranged.status_code == 206
    assert len(ranged.content) == 10

    link = await client.get(
        f"/api/v1/segments/{segment['id']}/download-url", headers=headers, params={"format": "glb"}
    )
    assert link.status_code == 200
    signed = link.json()["url"]
    anonymous = await client.get(signed)
    assert anonymous.status_code == 200
    assert anonymous.content[:4] == b"glTF"
    assert (await client.get(signed.replace("sig=", "sig=x"))).status_code == 403
    assert (await client.get(signed.replace("/glb/", "/stl/"))).status_code == 403

    # Labels and FDI tooth numbers (quadrant 1-4, tooth 1-8).
    patch = f"/api/v1/segments/{segment['id']}"
    for bad in (10, 19, 51, 9, 49):
        refused = await client.patch(patch, headers=headers, json={"tooth_number": bad})
        assert refused.status_code == 422, bad
    labelled = await client.patch(
        patch, headers=headers, json={"label": "upper left first molar", "tooth_number": 26}
    )
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["tooth_number"] == 26
    assert labelled.json()["edited_fields"] == ["label", "tooth_number"]
    stale = await client.patch(patch, headers={**headers, "If-Match": 'W/"1"'}, json={"label": "x"})
    assert stale.status_code == 412
    viewer = bearer_headers(app, tenant.users["viewer"])
    assert (await client.get(patch, headers=viewer)).status_code == 200
    assert (await client.patch(patch, headers=viewer, json={"label": "no"})).status_code == 403

    summary = await client.get(f"/api/v1/cases/{case_id}/segments/summary", headers=headers)
    assert summary.status_code == 200
    totals = summary.json()
    assert totals["count"] == len(BODIES.parts) + first_count(done, totals)
    assert {item["id"] for item in totals["by_segmentation"]} == {
        segmentation["id"],
        first.json()["id"],
    }

    other = await make_tenant(app, "Other")
    stranger = bearer_headers(app, other.owner)
    assert (await client.get(patch, headers=stranger)).status_code == 404
    assert (
        await client.get(f"/api/v1/segmentations/{segmentation['id']}", headers=stranger)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/cases/{case_id}/segments", headers=stranger)
    ).status_code == 404
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] > len(encode(BODIES.mesh, "stl-binary"))


def first_count(done: dict[str, Any], totals: dict[str, Any]) -> int:
    """Segments of the other segmentation of the case (min_faces=50)."""
    return sum(
        item["segment_count"] for item in totals["by_segmentation"] if item["id"] != done["id"]
    )


async def test_curvature_segmentation_follows_the_creases(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id, document_id = await analysed_mesh(
        client, app, headers, encode(TERRACED.mesh, "obj"), "obj"
    )
    created = await client.post(
        f"/api/v1/cases/{case_id}/segmentations",
        headers=headers,
        json={"document_id": document_id, "method": "curvature", "min_faces": 30},
    )
    assert created.status_code == 202, created.text
    async with running_worker(app):
        done = await wait_segmentation(client, headers, created.json()["id"])
    assert done["status"] == "succeeded"
    assert done["params"] == {"min_faces": 30, "crease_angle": 30.0, "formats": ["stl"]}
    # The smallest bump (24 faces) is under min_faces.
    assert done["segment_count"] == len(TERRACED.parts) - 1
    assert done["discarded_faces"] == TERRACED.parts[-1].faces
    segments = (await client.get(f"/api/v1/cases/{case_id}/segments", headers=headers)).json()[
        "items"
    ]
    assert [s["faces"] for s in segments] == [p.faces for p in TERRACED.parts[:-1]]
    assert all(s["volume"] is None and s["watertight"] is False for s in segments)


async def test_segmentation_needs_an_analysed_mesh_of_the_case(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id = await make_case(client, headers)
    document = await upload_mesh(
        client, headers, encode(BODIES.mesh, "ply-binary"), "ply-binary", case_id
    )
    url = f"/api/v1/cases/{case_id}/segmentations"
    waiting = await client.post(url, headers=headers, json={"document_id": document["id"]})
    assert waiting.status_code == 409
    assert waiting.json()["code"] == "not_processed"
    other_case = await make_case(client, headers)
    elsewhere = await client.post(
        f"/api/v1/cases/{other_case}/segmentations",
        headers=headers,
        json={"document_id": document["id"]},
    )
    assert elsewhere.status_code == 422
    pdf = await client.post(
        "/api/v1/documents",
        headers=headers,
        files={"file": ("a.pdf", b"%PDF-1.4 not a mesh", "application/pdf")},
        data={"case_id": case_id},
    )
    not_mesh = await client.post(url, headers=headers, json={"document_id": pdf.json()["id"]})
    assert not_mesh.status_code == 422
    bad = await client.post(
        url, headers=headers, json={"document_id": document["id"], "formats": ["fbx"]}
    )
    assert bad.status_code == 422
    missing_case = await client.post(
        "/api/v1/cases/00000000-0000-0000-0000-000000000000/segmentations",
        headers=headers,
        json={"document_id": document["id"]},
    )
    assert missing_case.status_code == 404


async def test_a_failing_segmentation_says_why_and_emits_its_event(
    client: httpx.AsyncClient, app: Any, redis: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id, document_id = await analysed_mesh(
        client, app, headers, encode(BODIES.mesh, "ply-binary"), "ply-binary"
    )
    created = await client.post(
        f"/api/v1/cases/{case_id}/segmentations",
        headers=headers,
        json={"document_id": document_id},
    )
    assert created.status_code == 202
    async with running_worker(app, scan_max_faces=100):  # a worker with a lower limit
        done = await wait_segmentation(client, headers, created.json()["id"])
        job = await wait_for_job(client, headers, done["job_id"])
    assert done["status"] == "failed"
    assert "limit is 100" in done["error"]
    assert job["status"] == "failed"
    failed = await events_of(redis, app, tenant.id, "segmentation.failed")
    assert [event["segmentation_id"] for event in failed] == [done["id"]]
    # Once it failed, the same request starts a new run.
    again = await client.post(
        f"/api/v1/cases/{case_id}/segmentations",
        headers=headers,
        json={"document_id": document_id},
    )
    assert again.status_code == 202
    assert again.json()["id"] != done["id"]
