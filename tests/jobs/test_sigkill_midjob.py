"""A real worker SIGKILLed in the middle of `case.export` (its ZIP half
streamed into storage) and of `document.extract_text` (its file half read):
after the lease the job runs again and finishes exactly once, leaving one
artifact row and one stored blob at most, and nothing half-made."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from backend.kit.storage import get_storage
from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import make_case, make_document, wait_for_job
from tests.support.workers import start_worker, stop_worker, worker_env, workers


@pytest.fixture
def env(database_url: str, redis_url: str, settings: Settings) -> dict[str, str]:
    # The worker's storage is the in-process app's (the same data directory).
    return worker_env(
        database_url,
        redis_url,
        settings.redis_key_prefix,
        DOSSIER_DATA_DIR=str(settings.dossier_data_dir),
    )


def _storage_root(app: Any) -> Path:
    root: Path = get_storage(app.state.settings).root  # type: ignore[attr-defined]
    return root


def _job_blobs(app: Any, tenant_id: Any) -> list[str]:
    root = _storage_root(app)
    folder = root / "tenants" / str(tenant_id) / "jobs"
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in folder.rglob("*") if path.is_file())


async def _kill_midway(
    env: dict[str, str], marker: Path, job: str, client: Any, headers: Any
) -> None:
    """Run a worker whose storage I/O crawls, SIGKILL it once the job is
    past its first chunk and still running."""
    slow = {**env, "SLOW_STORAGE_SECONDS": "3", "SLOW_STORAGE_MARKER": str(marker)}
    slow["JOB_MODULES"] = "tests.support.slow_storage"
    doomed = start_worker(slow, concurrency=1)
    try:
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(marker.exists):
            assert doomed.poll() is None, stop_worker(doomed)
            assert time.monotonic() < deadline, "the job never reached its storage I/O"
            await asyncio.sleep(0.05)
        assert (await wait_for_job(client, headers, job, statuses=("running",)))["attempts"] == 1
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        stop_worker(doomed)


async def _rows(owner_engine: Any, sql: str, **params: Any) -> list[Any]:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def test_sigkill_mid_case_export_finishes_once_without_orphans(
    client: Any, app: Any, env: dict[str, str], tmp_path: Path, owner_engine: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id = await make_case(app, tenant.id, "Killed export")
    for number in range(3):
        await make_document(
            app,
            tenant.id,
            f"file {number} ".encode() * 5000,
            filename=f"{number}.txt",
            case_id=case_id,
        )
    answer = await client.post(
        "/api/v1/jobs", json={"type": "case.export", "case_id": str(case_id)}, headers=headers
    )
    job_id = answer.json()["id"]
    staging = _storage_root(app) / ".staging"
    before = set(staging.iterdir()) if staging.exists() else set()
    await _kill_midway(env, tmp_path / "marker", job_id, client, headers)
    assert set(staging.iterdir()) - before, "the kill came before the ZIP was staged"
    assert _job_blobs(app, tenant.id) == []
    with workers(env, concurrency=1):
        job = await wait_for_job(client, headers, job_id, timeout=40)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    artifacts = await _rows(
        owner_engine, "SELECT storage_key FROM job_artifacts WHERE job_id = :id", id=job_id
    )
    assert len(artifacts) == 1
    assert _job_blobs(app, tenant.id) == [artifacts[0].storage_key]
    download = await client.get(f"/api/v1/jobs/{job_id}/artifacts/export.zip", headers=headers)
    assert download.status_code == 200
    assert download.content[:2] == b"PK"
    logs = (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=headers)).json()["items"]
    assert any("lease expired" in line["message"] for line in logs)
    # The killed attempt's half-written ZIP is only in staging, which the
    # maintenance sweep empties (here with no age limit).
    swept = await get_storage(app.state.settings).sweep_staging(0)
    assert swept >= 1
    assert not any(staging.iterdir())


async def test_sigkill_mid_extract_text_finishes_once(
    client: Any, app: Any, env: dict[str, str], tmp_path: Path, owner_engine: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    content = b"Dossier text extraction survives a killed worker. " * 22000
    document_id = await make_document(app, tenant.id, content, filename="long.txt")
    answer = await client.post(
        "/api/v1/jobs",
        json={"type": "document.extract_text", "document_id": str(document_id)},
        headers=headers,
    )
    job_id = answer.json()["id"]
    await _kill_midway(env, tmp_path / "marker", job_id, client, headers)
    with workers(env, concurrency=1):
        job = await wait_for_job(client, headers, job_id, timeout=40)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    document = (await client.get(f"/api/v1/documents/{document_id}", headers=headers)).json()
    assert document["status"] == "processed", document
    follow_ups = await _rows(
        owner_engine,
        "SELECT id FROM jobs WHERE document_id = :id AND type = 'document.extract_fields'",
        id=document_id,
    )
    assert len(follow_ups) <= 1
    assert job["result"]["extract_fields_job_id"] in (
        [None] if not follow_ups else [str(follow_ups[0].id)]
    )
    assert (
        await _rows(owner_engine, "SELECT id FROM job_artifacts WHERE job_id = :id", id=job_id)
        == []
    )
    assert _job_blobs(app, tenant.id) == []
