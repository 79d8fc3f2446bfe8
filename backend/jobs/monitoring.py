"""Queue figures for `/ready` and `/metrics`, read across tenants in the
named system scope `jobs.monitoring`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from backend.kit.db import Database, system_scope
from backend.kit.metrics import JOB_RUN_SECONDS, JOBS_BY_STATUS, JOBS_OLDEST_QUEUED

_OLDEST = text(
    "SELECT count(*) AS queued, "
    "EXTRACT(EPOCH FROM now() - min(created_at)) AS oldest FROM jobs WHERE status = 'queued'"
)
_BY_TYPE = text(
    "SELECT type, status, count(*) AS n, "
    "COALESCE(sum(EXTRACT(EPOCH FROM finished_at - started_at)) "
    "FILTER (WHERE finished_at IS NOT NULL AND started_at IS NOT NULL), 0) AS run_seconds "
    "FROM jobs GROUP BY type, status"
)


async def queue_summary(database: Database) -> dict[str, Any]:
    with system_scope("jobs.monitoring"):
        async with database.transaction() as session:
            row = (await session.execute(_OLDEST)).one()
    oldest = float(row.oldest) if row.oldest is not None else None
    return {"queued": int(row.queued), "oldest_queued_age_seconds": oldest}


async def refresh_job_gauges(database: Database) -> None:
    """Queue depth and outcomes by type, and total run time (sum and count)."""
    with system_scope("jobs.monitoring"):
        async with database.transaction() as session:
            rows = (await session.execute(_BY_TYPE)).all()
            oldest = (await session.execute(_OLDEST)).one()
    JOBS_BY_STATUS.clear()
    JOB_RUN_SECONDS.clear()
    for row in rows:
        JOBS_BY_STATUS.labels(row.type, row.status).set(row.n)
        if row.status in ("succeeded", "failed", "cancelled"):
            JOB_RUN_SECONDS.labels(row.type, row.status, "sum").set(float(row.run_seconds))
            JOB_RUN_SECONDS.labels(row.type, row.status, "count").set(row.n)
    JOBS_OLDEST_QUEUED.set(float(oldest.oldest) if oldest.oldest is not None else 0.0)
