"""Reliability with real worker processes: SIGKILL mid-job, two workers
racing, the database connection cut, Redis down, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import raise_job_cap, wait_for_job
from tests.support.postgres import terminate_other_backends
from tests.support.tcp_proxy import TcpProxy
from tests.support.workers import start_worker, stop_worker, worker_env, workers


def _runs(record: Path) -> dict[str, collections.Counter[str]]:
    runs: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    if record.exists():
        for line in record.read_text().splitlines():
            kind, job_id, _ = line.split()
            runs[job_id][kind] += 1
    return runs


@pytest.fixture
def env(database_url: str, redis_url: str, settings: Settings) -> dict[str, str]:
    return worker_env(database_url, redis_url, settings.redis_key_prefix)


async def test_sigkilled_worker_job_is_requeued_and_finishes_once(
    client: Any, app: Any, env: dict[str, str], tmp_path: Path
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    record = tmp_path / "runs.txt"
    answer = await client.post(
        "/api/v1/jobs",
        json={"type": "test.work", "payload": {"record": str(record), "sleep": 3, "steps": 30}},
        headers=headers,
    )
    job_id = answer.json()["id"]
    doomed = start_worker(env)
    try:
        await wait_for_job(client, headers, job_id, statuses=("running",), timeout=30)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        stop_worker(doomed)
    with workers(env):
        job = await wait_for_job(client, headers, job_id, timeout=60)
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    runs = _runs(record)[job_id]
    assert runs == {"start": 2, "done": 1}
    logs = (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=headers)).json()["items"]
    assert any("lease expired" in line["message"] for line in logs)


async def test_two_workers_race_over_2000_jobs_each_runs_once(
    client: Any, app: Any, env: dict[str, str], tmp_path: Path, owner_engine: Any
) -> None:
    tenant = await make_tenant(app)
    await raise_job_cap(owner_engine, tenant.id, 100)
    headers = bearer_headers(app, tenant.owner)
    record = tmp_path / "runs.txt"
    ids: list[str] = []
    for _ in range(2):
        answer = await client.post(
            "/api/v1/batches",
            json={"type": "test.work", "items": [{"payload": {"record": str(record)}}] * 1000},
            headers=headers,
        )
        assert answer.status_code == 202
        ids.extend(answer.json()["job_ids"])
    with workers(env, count=2, concurrency=4):
        deadline = time.monotonic() + 240
        while True:
            stats = (await client.get("/api/v1/jobs/stats", headers=headers)).json()
            if stats["by_status"]["succeeded"] == 2000 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert stats["by_status"]["succeeded"] == 2000, stats
    runs = _runs(record)
    assert set(runs) == set(ids)
    assert all(counts == {"start": 1, "done": 1} for counts in runs.values())
    async with owner_engine.begin() as connection:
        workers_used = (
            await connection.execute(
                text(
                    "SELECT count(DISTINCT split_part(l.message, ' by ', 2)) FROM job_logs l "
                    "WHERE l.message LIKE '% started by %'"
                )
            )
        ).scalar()
    assert workers_used == 2


async def test_worker_survives_its_database_connections_being_killed(
    client: Any, app: Any, env: dict[str, str], owner_engine: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    with workers(env) as (process,):
        first = (
            await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)
        ).json()
        assert (await wait_for_job(client, headers, first["id"]))["status"] == "succeeded"
        running = (
            await client.post(
                "/api/v1/jobs",
                json={"type": "test.work", "payload": {"sleep": 2, "steps": 10}},
                headers=headers,
            )
        ).json()
        await wait_for_job(client, headers, running["id"], statuses=("running",))
        killed = await terminate_other_backends(owner_engine)
        assert killed >= 1
        job = await wait_for_job(client, headers, running["id"], timeout=60)
        assert job["status"] == "succeeded"
        after = (
            await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)
        ).json()
        assert (await wait_for_job(client, headers, after["id"], timeout=60))[
            "status"
        ] == "succeeded"
        assert process.poll() is None


async def test_jobs_run_while_redis_is_down(
    client: Any, app: Any, database_url: str, redis_url: str, settings: Settings
) -> None:
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    env = worker_env(database_url, f"redis://127.0.0.1:{proxy.port}/0", settings.redis_key_prefix)
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    process = start_worker(env)
    try:
        await proxy.stop()
        answer = await client.post(
            "/api/v1/jobs", json={"type": "test.work", "payload": {"steps": 2}}, headers=headers
        )
        job = await wait_for_job(client, headers, answer.json()["id"], timeout=60)
        assert job["status"] == "succeeded"
        assert process.poll() is None
    finally:
        output = stop_worker(process)
    assert "event dropped: Redis unavailable" in output


async def test_sigterm_lets_the_running_job_finish(
    client: Any, app: Any, env: dict[str, str]
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    answer = await client.post(
        "/api/v1/jobs",
        json={"type": "test.work", "payload": {"sleep": 1.5, "steps": 5}},
        headers=headers,
    )
    process = start_worker(env)
    await wait_for_job(client, headers, answer.json()["id"], statuses=("running",), timeout=30)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    job = (await client.get(f"/api/v1/jobs/{answer.json()['id']}", headers=headers)).json()
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
