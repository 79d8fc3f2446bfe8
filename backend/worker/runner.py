"""The worker: claims jobs from the `jobs` table, runs them, records the outcome.

* Claim: `SELECT … FOR UPDATE SKIP LOCKED` by priority then age, in the named
  system scope `worker.claim`, skipping tenants at their running-jobs cap.
  Woken by `LISTEN/NOTIFY` (sent in the enqueueing transaction), with a poll
  as a fallback for scheduled retries and lost notifications.
* Lease: a claimed job is locked by this worker until `locked_until`; the
  heartbeat extends the leases of running jobs and learns of cancel requests.
  Any live worker re-queues jobs whose lease expired (their worker died),
  which counts as an attempt; outcomes are written only while the lease is
  still this worker's (a fenced UPDATE), so a job finishes at most once.
* Failures are retried with exponential backoff and jitter up to
  `max_attempts`; the handler runs in the job's tenant scope, carrying the
  creating request's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from backend.jobs.models import NOTIFY_CHANNEL, JobStatus
from backend.kit.db import Database, system_scope, tenant_scope
from backend.kit.events import EventBus, configure_event_bus, emit, event_bus
from backend.kit.metrics import JOB_DURATION, JOB_OUTCOMES
from backend.kit.models import uuid7
from backend.kit.redis import create_redis
from backend.kit.request_context import ClientInfo, bind_request, unbind_request
from backend.settings import Settings
from backend.worker.context import JobCancelled, JobContext, JobSnapshot, LeaseLost, write_log
from backend.worker.registry import PermanentJobError, RetryableJobError, load_job_types, registry

logger = logging.getLogger("dossier.worker")

DB_ERRORS = (DBAPIError, OperationalError, InterfaceError, OSError, ConnectionError)
WEBHOOK_JOB_TYPE = "webhook.deliver"

_CLAIM = text(
    """
    WITH running AS (
        SELECT tenant_id, count(*) AS n FROM jobs WHERE status = 'running' GROUP BY tenant_id
    ),
    caps AS (
        SELECT t.id AS tenant_id,
               COALESCE(
                   (t.limits ->> 'max_running_jobs')::int,
                   (CAST(:plan_caps AS jsonb) ->> t.plan)::int,
                   :default_cap
               ) AS cap
        FROM tenants t
    ),
    full_tenants AS (
        SELECT r.tenant_id FROM running r JOIN caps c ON c.tenant_id = r.tenant_id
        WHERE r.n >= c.cap
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
               COALESCE(cp.cap, :default_cap) AS cap
        FROM candidates c
        LEFT JOIN running r ON r.tenant_id = c.tenant_id
        LEFT JOIN caps cp ON cp.tenant_id = c.tenant_id
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
    logged AS (
        INSERT INTO job_logs (id, tenant_id, job_id, attempt, level, message, request_id)
        SELECT gen_random_uuid(), tenant_id, id, attempts, 'info',
               'Attempt ' || attempts || ' of ' || max_attempts || ' started by '
                   || CAST(:worker AS varchar),
               request_id
        FROM claimed
    )
    SELECT * FROM claimed
    """
)

_HEARTBEAT = text(
    "UPDATE jobs SET locked_until = now() + make_interval(secs => :lease) "
    "WHERE locked_by = :worker AND status = 'running' "
    "RETURNING id, cancel_requested_at IS NOT NULL AS cancel"
)

_REAP = text(
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

_FINISH = text(
    """
    WITH finished AS (
    UPDATE jobs
    SET status = CAST(:status AS varchar), result = CAST(:result AS jsonb), error = :error,
        progress = CASE WHEN CAST(:status AS varchar) = 'succeeded' THEN 100 ELSE progress END,
        finished_at = CASE WHEN CAST(:final AS boolean) THEN now() END,
        run_after = now() + make_interval(secs => CAST(:delay AS double precision)),
        attempts = attempts - CAST(:refund AS integer),
        locked_by = NULL, locked_until = NULL, updated_at = now()
    WHERE id = :id AND locked_by = :worker AND status = 'running'
    RETURNING id, tenant_id
    ),
    logged AS (
        INSERT INTO job_logs (id, tenant_id, job_id, attempt, level, message, request_id)
        SELECT gen_random_uuid(), tenant_id, id, CAST(:attempt AS integer),
               CAST(:level AS varchar), CAST(:message AS text), CAST(:request_id AS varchar)
        FROM finished
    )
    SELECT id FROM finished
    """
)


@dataclass(slots=True)
class Outcome:
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None
    delay: float = 0.0
    refund: bool = False  # released at shutdown: the attempt does not count

    @property
    def final(self) -> bool:
        return self.status is not JobStatus.QUEUED


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


def backoff_delay(settings: Settings, attempt: int) -> float:
    """Exponential backoff with full jitter over the upper half."""
    ceiling = float(
        min(settings.job_retry_max_seconds, settings.job_retry_base_seconds * 2 ** (attempt - 1))
    )
    return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 - jitter, not security


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 4,
        database: Database | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._own_database = database is None
        self.database = database or Database(
            _url(settings.database_url, "DATABASE_URL"),
            app_role=settings.db_app_role,
            pool_size=self.concurrency + 3,
            max_overflow=self.concurrency + 3,
        )
        self.executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="job")
        self.storage: Any = None
        self._running: dict[UUID, tuple[asyncio.Task[None], JobContext]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._plan_caps = json.dumps(plan_caps(settings))
        self._redis: Any = None

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Stop claiming; running jobs get `job_shutdown_timeout_seconds`."""
        if not self._stopping.is_set():
            logger.info("worker stopping", extra={"worker": self.worker_id})
        self._stopping.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    @property
    def running_count(self) -> int:
        return len(self._running)

    async def run(self) -> None:
        load_job_types(self.settings.job_modules)
        if self.settings.redis_url is not None and event_bus() is None:
            self._redis = create_redis(self.settings.redis_url.get_secret_value())
            configure_event_bus(
                EventBus(
                    self._redis,
                    self.settings.redis_key_prefix,
                    buffer_size=self.settings.event_buffer_size,
                )
            )
        self.storage = _make_storage(self.settings)
        from backend.webhooks.service import webhook_service

        webhook_service.configure(self.settings)
        logger.info(
            "worker started",
            extra={
                "worker": self.worker_id,
                "concurrency": self.concurrency,
                "types": registry.names(),
            },
        )
        helpers = [
            asyncio.create_task(self._listen(), name="worker-listen"),
            asyncio.create_task(self._heartbeat(), name="worker-heartbeat"),
        ]
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self.executor.shutdown(wait=False, cancel_futures=True)
            if self._redis is not None:
                configure_event_bus(None)
                with contextlib.suppress(Exception):
                    await self._redis.aclose()
            if self._own_database:
                await self.database.dispose()
            logger.info("worker stopped", extra={"worker": self.worker_id})

    # ------------------------------------------------------------------- claim
    async def _claim_loop(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._running)
            claimed = 0
            if free > 0:
                try:
                    claimed = await self._claim(free)
                    backoff = 0.2
                except DB_ERRORS as exc:
                    logger.warning(
                        "claim failed; retrying",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_in": backoff},
                    )
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            if claimed and claimed == free:
                continue  # there may be more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_interval_seconds)

    async def _claim(self, count: int) -> int:
        with system_scope("worker.claim"):
            async with self.database.transaction() as session:
                rows = (
                    await session.execute(
                        _CLAIM,
                        {
                            "n": count,
                            "scan": count * 4,
                            "worker": self.worker_id,
                            "lease": self.settings.job_lease_seconds,
                            "plan_caps": self._plan_caps,
                            "default_cap": self.settings.job_default_max_running,
                        },
                    )
                ).all()
                jobs = [JobSnapshot.from_row(row) for row in rows]
                for job in jobs:
                    emit(
                        session,
                        "job.started",
                        {"job_id": str(job.id), "type": job.type, "attempt": job.attempt},
                        tenant_id=job.tenant_id,
                        webhooks=job.type != WEBHOOK_JOB_TYPE,
                    )
        for job in jobs:
            context = JobContext(
                job=job,
                database=self.database,
                settings=self.settings,
                worker_id=self.worker_id,
                executor=self.executor,
                storage=self.storage,
            )
            task = asyncio.create_task(self._execute(context), name=f"job-{job.id}")
            self._running[job.id] = (task, context)
        return len(jobs)

    # --------------------------------------------------------------- execution
    async def _execute(self, context: JobContext) -> None:
        job = context.job
        tokens = bind_request(job.request_id or f"job-{job.id}", ClientInfo())
        started = time.monotonic()
        try:
            with tenant_scope(job.tenant_id):
                outcome = await self._outcome(context)
                context.extras["finishing"] = True
                if outcome is not None:
                    await self._finish(context, outcome)
                    JOB_OUTCOMES.labels(job.type, outcome.status.value).inc()
                    JOB_DURATION.labels(job.type).observe(time.monotonic() - started)
        except Exception:
            logger.exception("job bookkeeping failed", extra={"job_id": str(job.id)})
        finally:
            unbind_request(tokens)
            self._running.pop(job.id, None)
            self._wake.set()

    async def _outcome(self, context: JobContext) -> Outcome | None:
        job = context.job
        job_type = registry.get(job.type)
        try:
            if job_type is None:
                raise PermanentJobError(f"Unknown job type {job.type!r}")
            result = await job_type.handler(context)
            return Outcome(JobStatus.SUCCEEDED, result=result or {})
        except JobCancelled:
            return Outcome(JobStatus.CANCELLED, error="Cancelled")
        except LeaseLost:
            logger.warning("lease lost; another worker owns the job", extra={"job_id": str(job.id)})
            return None
        except asyncio.CancelledError:
            if context.extras.get("lease_lost"):
                return None
            if context.cancel_requested:
                return Outcome(JobStatus.CANCELLED, error="Cancelled")
            # Shutdown: hand the job back without spending an attempt.
            return Outcome(JobStatus.QUEUED, error="Released at worker shutdown", refund=True)
        except PermanentJobError as exc:
            return Outcome(JobStatus.FAILED, error=str(exc) or type(exc).__name__)
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            if job.attempt >= job.max_attempts:
                return Outcome(JobStatus.FAILED, error=message)
            delay = backoff_delay(self.settings, job.attempt)
            if isinstance(exc, RetryableJobError) and exc.retry_after is not None:
                delay = exc.retry_after
            return Outcome(JobStatus.QUEUED, error=message, delay=delay)

    async def _finish(self, context: JobContext, outcome: Outcome) -> None:
        job = context.job
        deadline = time.monotonic() + max(30.0, self.settings.job_lease_seconds)
        backoff = 0.2
        while True:
            try:
                await self._write_outcome(job, outcome)
                return
            except DB_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise
                logger.warning(
                    "recording job outcome failed; retrying",
                    extra={"job_id": str(job.id), "error": type(exc).__name__},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _write_outcome(self, job: JobSnapshot, outcome: Outcome) -> None:
        """The fenced outcome UPDATE and its log line in one statement."""
        data: dict[str, Any] = {"job_id": str(job.id), "type": job.type, "attempt": job.attempt}
        if outcome.status is JobStatus.QUEUED:
            level = "warning"
            message = (
                "Released at worker shutdown"
                if outcome.refund
                else f"Attempt {job.attempt} failed: {outcome.error}; "
                f"retrying in {outcome.delay:.1f}s"
            )
            event_type = "job.queued"
            data["retry_in_seconds"] = round(outcome.delay, 3)
        else:
            level = "info" if outcome.status is JobStatus.SUCCEEDED else "error"
            message = f"Attempt {job.attempt} {outcome.status.value}"
            if outcome.error and outcome.status is not JobStatus.SUCCEEDED:
                message += f": {outcome.error}"
            event_type = f"job.{outcome.status.value}"
            if outcome.status is JobStatus.SUCCEEDED:
                data["result"] = outcome.result
            else:
                data["error"] = outcome.error
        async with self.database.transaction() as session:
            row = (
                await session.execute(
                    _FINISH,
                    {
                        "status": outcome.status.value,
                        "result": json.dumps(outcome.result, default=str)
                        if outcome.result is not None
                        else None,
                        "error": outcome.error
                        if outcome.status is not JobStatus.SUCCEEDED
                        else None,
                        "final": outcome.final,
                        "delay": outcome.delay,
                        "refund": 1 if outcome.refund else 0,
                        "id": job.id,
                        "worker": self.worker_id,
                        "attempt": job.attempt,
                        "level": level,
                        "message": message[:10_000],
                        "request_id": job.request_id,
                    },
                )
            ).first()
            if row is None:
                logger.warning("outcome not recorded: lease lost", extra={"job_id": str(job.id)})
                return
            if outcome.status is JobStatus.QUEUED:
                await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
            emit(
                session,
                event_type,
                data,
                tenant_id=job.tenant_id,
                webhooks=job.type != WEBHOOK_JOB_TYPE,
            )

    # ------------------------------------------------------ heartbeat, reaper
    async def _heartbeat(self) -> None:
        interval = max(0.2, self.settings.job_lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
                await self._reap()
            except DB_ERRORS as exc:
                logger.warning(
                    "heartbeat failed: database unavailable", extra={"error": type(exc).__name__}
                )

    async def _beat(self) -> None:
        if not self._running:
            return
        with system_scope("worker.heartbeat"):
            async with self.database.transaction() as session:
                rows = (
                    await session.execute(
                        _HEARTBEAT,
                        {"worker": self.worker_id, "lease": self.settings.job_lease_seconds},
                    )
                ).all()
        owned = {row.id: row.cancel for row in rows}
        for job_id, (task, context) in list(self._running.items()):
            if task.done() or context.extras.get("finishing"):
                continue
            if job_id not in owned:
                # Missing twice in a row (not just claimed): the lease went to another worker.
                context.extras["missed"] = context.extras.get("missed", 0) + 1
                if context.extras["missed"] >= 2:
                    context.extras["lease_lost"] = True
                    task.cancel()
            elif owned.get(job_id):
                context.cancel_requested = True
                task.cancel()

    async def _reap(self) -> None:
        with system_scope("worker.reap"):
            async with self.database.transaction() as session:
                rows = (await session.execute(_REAP)).all()
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

    # ----------------------------------------------------------------- listen
    async def _listen(self) -> None:
        """LISTEN on a connection of its own (idle outside any transaction,
        which is when PostgreSQL delivers notifications); reconnects."""
        import asyncpg

        dsn = self.database.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        backoff = 0.2
        while not self._stopping.is_set():
            connection: Any = None
            try:
                connection = await asyncpg.connect(dsn, timeout=10)
                await connection.add_listener(NOTIFY_CHANNEL, self._notified)
                self._wake.set()  # catch up on anything sent while not listening
                backoff = 0.2
                checked = time.monotonic()
                while not self._stopping.is_set() and not connection.is_closed():
                    await asyncio.sleep(0.5)
                    if time.monotonic() - checked > 5:
                        await connection.execute("SELECT 1")
                        checked = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "job notifications unavailable; polling until reconnected",
                    extra={"error": type(exc).__name__},
                )
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await self._sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _notified(self, *args: Any) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --------------------------------------------------------------- shutdown
    async def _drain(self) -> None:
        if not self._running:
            return
        tasks = [task for task, _ in self._running.values()]
        logger.info("waiting for running jobs", extra={"count": len(tasks)})
        _, pending = await asyncio.wait(tasks, timeout=self.settings.job_shutdown_timeout_seconds)
        for task in pending:
            task.cancel()  # released back to the queue by `_outcome`
        if pending:
            await asyncio.wait(pending, timeout=10)


def _url(value: Any, name: str) -> str:
    if value is None:
        raise SystemExit(f"{name} is not set")
    return str(value.get_secret_value())


def _make_storage(settings: Settings) -> Any:
    from backend.kit.storage import get_storage

    return get_storage(settings)


def new_id() -> UUID:
    return uuid7()
