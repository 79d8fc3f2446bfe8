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

from backend.jobs.context import JobCancelled, JobContext, JobSnapshot, LeaseLost, write_log
from backend.jobs.models import NOTIFY_CHANNEL, JobStatus
from backend.jobs.types import PermanentJobError, RetryableJobError, backoff_delay, registry
from backend.kit.db import Database, system_scope, tenant_scope
from backend.kit.events import (
    BufferedEventBus,
    Event,
    configure_event_bus,
    emit,
    event_bus,
    notify_event_listeners,
)
from backend.kit.metrics import JOB_DURATION, JOB_OUTCOMES
from backend.kit.models import uuid7
from backend.kit.redis import create_redis
from backend.kit.request_context import ClientInfo, bind_request, unbind_request
from backend.kit.storage import get_storage
from backend.settings import Settings
from backend.worker.maintenance import maintenance_loop

logger = logging.getLogger("dossier.worker")

DB_ERRORS = (DBAPIError, OperationalError, InterfaceError, OSError, ConnectionError)
WEBHOOK_JOB_TYPE = "webhook.deliver"
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
_CYCLE = text(
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


@dataclass(slots=True)
class Finished:
    """A job whose handler returned, waiting for the next turn of the queue
    to record its outcome."""

    context: JobContext
    outcome: Outcome
    done: asyncio.Future[bool]
    started: float
    deadline: float


def describe_outcome(job: JobSnapshot, outcome: Outcome) -> tuple[str, str, str, dict[str, Any]]:
    """The log level and line, event type and event data of an outcome."""
    data: dict[str, Any] = {"job_id": str(job.id), "type": job.type, "attempt": job.attempt}
    if outcome.status is JobStatus.QUEUED:
        level = "warning"
        message = (
            "Released at worker shutdown"
            if outcome.refund
            else f"Attempt {job.attempt} failed: {outcome.error}; retrying in {outcome.delay:.1f}s"
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
    return level, message[:10_000], event_type, data


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
        # The queue's own engine: one statement per turn, no pre-ping round
        # trip (a dead connection fails the turn, which is retried).
        self.queue_database = (
            Database(
                _url(settings.database_url, "DATABASE_URL"),
                app_role=settings.db_app_role,
                pool_size=1,
                max_overflow=1,
                pool_pre_ping=False,
            )
            if database is None
            else database
        )
        self.executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="job")
        self.storage: Any = None
        self._running: dict[UUID, tuple[asyncio.Task[None], JobContext]] = {}
        self._finished: list[Finished] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
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
        if self.settings.redis_url is not None and event_bus() is None:
            self._redis = create_redis(self.settings.redis_url.get_secret_value())
            configure_event_bus(
                BufferedEventBus(
                    self._redis,
                    self.settings.redis_key_prefix,
                    buffer_size=self.settings.event_buffer_size,
                )
            )
        self.storage = _make_storage(self.settings)
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
            asyncio.create_task(
                maintenance_loop(self.database, self.settings), name="worker-maintenance"
            ),
        ]
        try:
            await self._queue_loop()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if self._drainer is not None:
                self._drainer.cancel()
                await asyncio.gather(self._drainer, return_exceptions=True)
            self.executor.shutdown(wait=False, cancel_futures=True)
            if self._redis is not None:
                bus = event_bus()
                if isinstance(bus, BufferedEventBus):
                    await bus.aclose()
                configure_event_bus(None)
                with contextlib.suppress(Exception):
                    await self._redis.aclose()
            if self._own_database:
                await self.database.dispose()
                await self.queue_database.dispose()
            logger.info("worker stopped", extra={"worker": self.worker_id})

    # ------------------------------------------------------------------- queue
    async def _queue_loop(self) -> None:
        """Turn the queue until stopped and drained: each turn records the
        outcomes of the jobs that finished and claims jobs for the free slots,
        in one statement."""
        backoff = 0.2
        while True:
            self._wake.clear()
            stopping = self._stopping.is_set()
            if stopping:
                if self._drainer is None:
                    self._drainer = asyncio.create_task(self._drain(), name="worker-drain")
                if not self._finished and (not self._running or self._drainer.done()):
                    return
            finished = list(self._finished)
            # Jobs waiting for their outcome still hold their slot until this turn.
            free = 0 if stopping else self.concurrency - len(self._running) + len(finished)
            claimed = 0
            if finished or free > 0:
                try:
                    claimed = await self._turn(finished, free)
                    backoff = 0.2
                except DB_ERRORS as exc:
                    logger.warning(
                        "queue turn failed; retrying",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_in": backoff},
                    )
                    self._give_up_overdue()
                    if self._finished or stopping:
                        await asyncio.sleep(backoff)
                    else:
                        await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            if self._finished or (claimed and claimed == free):
                continue  # more outcomes to record, or there may be more jobs waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_interval_seconds)

    def _give_up_overdue(self) -> None:
        """Outcomes that could not be recorded in time are left to the lease
        reaper (the job runs again elsewhere)."""
        now = time.monotonic()
        for item in [item for item in self._finished if item.deadline < now]:
            self._finished.remove(item)
            logger.error(
                "job bookkeeping failed: outcome not recorded",
                extra={"job_id": str(item.context.job.id)},
            )
            if not item.done.done():
                item.done.set_result(False)

    async def _turn(self, finished: list[Finished], free: int) -> int:
        outcomes = [describe_outcome(item.context.job, item.outcome) for item in finished]
        params: dict[str, Any] = {
            "ids": [item.context.job.id for item in finished],
            "statuses": [item.outcome.status.value for item in finished],
            "results": [
                json.dumps(item.outcome.result, default=str)
                if item.outcome.result is not None
                else None
                for item in finished
            ],
            "errors": [
                item.outcome.error if item.outcome.status is not JobStatus.SUCCEEDED else None
                for item in finished
            ],
            "finals": [item.outcome.final for item in finished],
            "delays": [float(item.outcome.delay) for item in finished],
            "refunds": [1 if item.outcome.refund else 0 for item in finished],
            "attempts": [item.context.job.attempt for item in finished],
            "levels": [level for level, _, _, _ in outcomes],
            "messages": [message for _, message, _, _ in outcomes],
            "request_ids": [item.context.job.request_id for item in finished],
            "n": max(0, free),
            "scan": max(0, free) * 4,
            "worker": self.worker_id,
            "lease": self.settings.job_lease_seconds,
            "plan_caps": self._plan_caps,
            "default_cap": self.settings.job_default_max_running,
            "hook_types": JOB_EVENT_TYPES,
        }
        events: list[Event] = []
        jobs: list[JobSnapshot] = []
        recorded: set[UUID] = set()
        with system_scope("worker.queue"):
            async with self.queue_database.transaction() as session:
                rows = (await session.execute(_CYCLE, params)).all()
                by_job: dict[UUID, Finished] = {item.context.job.id: item for item in finished}
                hooked: list[tuple[JobSnapshot, Event]] = []
                for row in rows:
                    if row.claim:
                        job = JobSnapshot.from_row(row)
                        jobs.append(job)
                        event = Event(
                            "job.started",
                            job.tenant_id,
                            {"job_id": str(job.id), "type": job.type, "attempt": job.attempt},
                            webhooks=job.type != WEBHOOK_JOB_TYPE,
                        )
                    else:
                        item = by_job[row.id]
                        job = item.context.job
                        recorded.add(job.id)
                        _, _, event_type, data = outcomes[finished.index(item)]
                        event = Event(
                            event_type, job.tenant_id, data, webhooks=job.type != WEBHOOK_JOB_TYPE
                        )
                    events.append(event)
                    if row.hooked and event.webhooks:
                        hooked.append((job, event))
                for job, event in hooked:
                    tokens = bind_request(job.request_id or f"job-{job.id}", ClientInfo())
                    try:
                        await notify_event_listeners(session, [event])
                    finally:
                        unbind_request(tokens)
                if any(
                    item.outcome.status is JobStatus.QUEUED and item.context.job.id in recorded
                    for item in finished
                ):
                    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        bus = event_bus()
        if isinstance(bus, BufferedEventBus):
            bus.publish_later(events)
        elif bus is not None and events:
            await bus.publish_many(events)
        for item in finished:
            with contextlib.suppress(ValueError):
                self._finished.remove(item)
            job = item.context.job
            entry = self._running.get(job.id)
            if entry is not None and entry[1] is item.context:
                del self._running[job.id]
            if job.id in recorded:
                JOB_OUTCOMES.labels(job.type, item.outcome.status.value).inc()
                JOB_DURATION.labels(job.type).observe(time.monotonic() - item.started)
            else:
                logger.warning("outcome not recorded: lease lost", extra={"job_id": str(job.id)})
            if not item.done.done():
                item.done.set_result(job.id in recorded)
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
                done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                deadline = time.monotonic() + max(30.0, self.settings.job_lease_seconds)
                self._finished.append(Finished(context, outcome, done, started, deadline))
                self._wake.set()
                await done  # recorded by the next turn of the queue
        except Exception:
            logger.exception("job bookkeeping failed", extra={"job_id": str(job.id)})
        finally:
            unbind_request(tokens)
            entry = self._running.get(job.id)
            if entry is not None and entry[1] is context:
                del self._running[job.id]
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
    return get_storage(settings)


def new_id() -> UUID:
    return uuid7()
