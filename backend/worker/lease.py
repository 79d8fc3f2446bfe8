"""Leases: a running job is this worker's until `locked_until`. The heartbeat
extends the leases of the jobs it runs (and learns of cancel requests); any
live worker re-queues jobs whose lease expired because their worker died,
which counts as an attempt."""

from __future__ import annotations

import logging
from uuid import UUID

from sqlalchemy import text

from backend.jobs.context import JobSnapshot, write_log
from backend.jobs.models import NOTIFY_CHANNEL, JobStatus
from backend.jobs.service import WEBHOOK_JOB_TYPE
from backend.kit.db import Database, system_scope
from backend.kit.events import emit

logger = logging.getLogger("dossier.worker")

HEARTBEAT = text(
    "UPDATE jobs SET locked_until = now() + make_interval(secs => :lease) "
    "WHERE locked_by = :worker AND status = 'running' "
    "RETURNING id, cancel_requested_at IS NOT NULL AS cancel"
)

REAP = text(
    """
    UPDATE jobs AS j
    SET status = CASE
            WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
            WHEN j.attempts >= j.max_attempts THEN 'failed'
            ELSE 'queued' END,
        error = 'Worker lost: its lease expired',
        finished_at = CASE
            WHEN j.cancel_requested_at IS NOT NULL OR j.attempts >= j.max_attempts THEN now()
            END,
        locked_by = NULL, locked_until = NULL, run_after = now(), updated_at = now()
    FROM (
        SELECT id FROM jobs WHERE status = 'running' AND locked_until < now()
        FOR UPDATE SKIP LOCKED
    ) AS expired
    WHERE j.id = expired.id
    RETURNING j.id, j.tenant_id, j.type, j.status, j.attempts, j.max_attempts, j.request_id,
              j.payload, j.document_id, j.case_id, j.batch_id, j.created_by
    """
)


async def extend_leases(
    database: Database, worker_id: str, lease_seconds: float
) -> dict[UUID, bool]:
    """Extend this worker's leases; each job it still holds, with whether a
    cancel was requested."""
    with system_scope("worker.heartbeat"):
        async with database.transaction() as session:
            rows = (
                await session.execute(HEARTBEAT, {"worker": worker_id, "lease": lease_seconds})
            ).all()
    return {row.id: row.cancel for row in rows}


async def reap_expired(database: Database) -> int:
    """Re-queue (or fail, or cancel) the jobs whose worker's lease expired."""
    with system_scope("worker.reap"):
        async with database.transaction() as session:
            rows = (await session.execute(REAP)).all()
            for row in rows:
                job = JobSnapshot.from_row(row)
                status = JobStatus(row.status)
                await write_log(
                    session,
                    job,
                    f"Attempt {job.attempt}: worker lost (lease expired); job {status.value}",
                    "warning",
                )
                emit(
                    session,
                    f"job.{status.value}",
                    {
                        "job_id": str(job.id),
                        "type": job.type,
                        "attempt": job.attempt,
                        "error": "Worker lost: its lease expired",
                    },
                    tenant_id=job.tenant_id,
                    webhooks=job.type != WEBHOOK_JOB_TYPE,
                )
            if rows:
                await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    if rows:
        logger.warning("re-queued jobs of a lost worker", extra={"count": len(rows)})
    return len(rows)
