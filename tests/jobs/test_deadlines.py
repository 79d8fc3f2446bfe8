"""Every job type has a wall-clock deadline (`timeout_seconds`, else
JOB_DEFAULT_TIMEOUT_SECONDS): past it the attempt fails as retryable, and the
worker's slot is free again."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job


async def test_the_default_deadline_fails_attempts_as_retryable(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    slow = await client.post(
        "/api/v1/jobs",
        json={"type": "test.work", "payload": {"sleep": 30}, "max_attempts": 2},
        headers=headers,
    )
    assert slow.status_code == 202, slow.text
    started = time.monotonic()
    async with running_worker(app, concurrency=1, job_default_timeout_seconds=0.5):
        job = await wait_for_job(client, headers, slow.json()["id"], timeout=20)
        # The slot is free again: the next job runs.
        quick = await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)
        assert (await wait_for_job(client, headers, quick.json()["id"]))["status"] == "succeeded"
    assert time.monotonic() - started < 15
    assert job["status"] == "failed"
    assert job["attempts"] == 2  # retried once, then out of attempts
    assert "Deadline of 0.5 s exceeded" in job["error"]


async def test_a_types_own_deadline_wins(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post(
        "/api/v1/jobs", json={"type": "test.deadline", "max_attempts": 1}, headers=headers
    )
    assert created.status_code == 202, created.text
    async with running_worker(app, concurrency=1, job_default_timeout_seconds=600):
        job = await wait_for_job(client, headers, created.json()["id"], timeout=20)
    assert job["status"] == "failed"
    assert "Deadline of 0.3 s exceeded" in job["error"]
