"""Jobs in the tenant's usage (`GET /tenant`) and the platform stats."""

from __future__ import annotations

from typing import Any

from tests.factories import bearer_headers, make_tenant, run_sql


async def _queue(client: Any, headers: dict[str, str], count: int) -> list[str]:
    ids = []
    for _ in range(count):
        answer = await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids


async def test_running_jobs_show_in_usage_and_admin_stats(client: Any, app: Any) -> None:
    platform = await make_tenant(app, "Platform", superadmin=True)
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    first_headers = bearer_headers(app, first.owner)
    first_jobs = await _queue(client, first_headers, 3)
    second_jobs = await _queue(client, bearer_headers(app, second.owner), 2)
    await run_sql(
        app,
        "UPDATE jobs SET status = 'running', started_at = now()"
        " WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=[*first_jobs[:2], second_jobs[0]],
    )

    tenant = (await client.get("/api/v1/tenant", headers=first_headers)).json()
    assert tenant["usage"]["running_jobs"] == 2

    stats = await client.get("/api/v1/admin/stats", headers=bearer_headers(app, platform.owner))
    assert stats.status_code == 200
    assert stats.json()["jobs"] == {
        "queued": 2,
        "running": 3,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
