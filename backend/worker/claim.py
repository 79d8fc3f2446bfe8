"""The queue's one statement per turn: record the outcomes of the jobs that
finished and claim jobs for the free slots, within the tenants' running caps."""

from __future__ import annotations

from sqlalchemy import text

from backend.settings import Settings

# The events of the queue itself, which webhooks may subscribe to.
JOB_EVENT_TYPES = ["job.started", "job.queued", "job.succeeded", "job.failed", "job.cancelled"]

_CAP = """COALESCE(
                   (t.limits ->> 'max_running_jobs')::int,
                   (CAST(:plan_caps AS jsonb) ->> t.plan)::int,
                   :default_cap
               )"""
_HOOKED = """EXISTS (
        SELECT 1 FROM webhooks w
        WHERE w.tenant_id = {alias}.tenant_id AND w.is_active AND w.deleted_at IS NULL
          AND w.events && CAST(:hook_types AS varchar[])
    ) AS hooked"""

# One round trip per turn of the queue: record the outcomes of the jobs that
# finished since the last turn (fenced: only rows this worker still holds),
# log them, and claim up to `:n` new ones for the freed slots. The running
# counts behind the tenant caps leave out the jobs being finished here (the
# statement's snapshot still sees them running). Each row says whether its
# tenant has an active webhook for job events, so the webhook fan-out only
# runs when there is something to deliver.
CYCLE = text(
    f"""
    WITH outcome AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:statuses AS varchar[]), CAST(:results AS text[]),
            CAST(:errors AS text[]), CAST(:finals AS boolean[]),
            CAST(:delays AS double precision[]), CAST(:refunds AS integer[]),
            CAST(:attempts AS integer[]), CAST(:levels AS varchar[]),
            CAST(:messages AS text[]), CAST(:request_ids AS varchar[])
        ) AS o(id, status, result, error, final, delay, refund, attempt, level, message,
               request_id)
    ),
    finished AS (
        UPDATE jobs AS j
        SET status = o.status, result = CAST(o.result AS jsonb), error = o.error,
            progress = CASE WHEN o.status = 'succeeded' THEN 100 ELSE j.progress END,
            finished_at = CASE WHEN o.final THEN now() END,
            run_after = now() + make_interval(secs => o.delay),
            attempts = j.attempts - o.refund,
            locked_by = NULL, locked_until = NULL, updated_at = now()
        FROM outcome o
        WHERE j.id = o.id AND j.locked_by = CAST(:worker AS varchar) AND j.status = 'running'
        RETURNING j.id, j.tenant_id, j.type
    ),
    finished_logged AS (
        INSERT INTO job_logs (id, tenant_id, job_id, attempt, level, message, request_id)
        SELECT gen_random_uuid(), f.tenant_id, f.id, o.attempt, o.level, o.message, o.request_id
        FROM finished f JOIN outcome o ON o.id = f.id
    ),
    running AS (
        SELECT tenant_id, count(*) AS n FROM jobs
        WHERE status = 'running' AND id <> ALL (CAST(:ids AS uuid[]))
        GROUP BY tenant_id
    ),
    full_tenants AS (
        SELECT r.tenant_id FROM running r JOIN tenants t ON t.id = r.tenant_id
        WHERE r.n >= {_CAP}
    ),
    candidates AS (
        SELECT id, tenant_id, priority, created_at FROM jobs
        WHERE status = 'queued' AND run_after <= now()
          AND tenant_id NOT IN (SELECT tenant_id FROM full_tenants)
        ORDER BY priority DESC, created_at
        LIMIT :scan
        FOR UPDATE SKIP LOCKED
    ),
    ranked AS (
        SELECT c.id, c.priority, c.created_at,
               row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.priority DESC, c.created_at)
                   + COALESCE(r.n, 0) AS slot,
               {_CAP} AS cap
        FROM candidates c
        JOIN tenants t ON t.id = c.tenant_id
        LEFT JOIN running r ON r.tenant_id = c.tenant_id
    ),
    chosen AS (
        SELECT id FROM ranked WHERE slot <= cap ORDER BY priority DESC, created_at LIMIT :n
    ),
    claimed AS (
        UPDATE jobs AS j
        SET status = 'running', attempts = j.attempts + 1, locked_by = CAST(:worker AS varchar),
            locked_until = now() + make_interval(secs => :lease),
            started_at = now(), finished_at = NULL, updated_at = now()
        FROM chosen WHERE j.id = chosen.id
        RETURNING j.id, j.tenant_id, j.type, j.payload, j.attempts, j.max_attempts,
                  j.document_id, j.case_id, j.batch_id, j.request_id, j.created_by
    ),
    claimed_logged AS (
        INSERT INTO job_logs (id, tenant_id, job_id, attempt, level, message, request_id)
        SELECT gen_random_uuid(), tenant_id, id, attempts, 'info',
               'Attempt ' || attempts || ' of ' || max_attempts || ' started by '
                   || CAST(:worker AS varchar),
               request_id
        FROM claimed
    )
    SELECT true AS claim, c.*, {_HOOKED.format(alias="c")} FROM claimed c
    UNION ALL
    SELECT false, f.id, f.tenant_id, f.type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           {_HOOKED.format(alias="f")}
    FROM finished f
    """  # noqa: S608 - only the constant fragments above are interpolated
)


def plan_caps(settings: Settings) -> dict[str, int]:
    """Running-jobs cap of each plan, from the tenant plans in settings."""
    plans = getattr(settings, "plans", None) or {}
    caps: dict[str, int] = {}
    for name, plan in dict(plans).items():
        value = (
            plan.get("max_running_jobs")
            if isinstance(plan, dict)
            else getattr(plan, "max_running_jobs", None)
        )
        if value is not None:
            caps[str(name)] = int(value)
    return caps
