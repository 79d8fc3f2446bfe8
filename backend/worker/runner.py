"""The worker's run loop: claims jobs from the `jobs` table, runs them,
records the outcome (`claim.py` the statement, `lease.py` the heartbeat and
the reaper, `notify.py` the wake-ups, `outcomes.py` what an attempt came to).

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
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from backend.jobs.context import JobContext, JobSnapshot
from backend.jobs.models import NOTIFY_CHANNEL, JobStatus
from backend.jobs.service import WEBHOOK_JOB_TYPE
from backend.jobs.types import registry
from backend.kit.db import Database, system_scope, tenant_scope
from backend.kit.event_bus import BufferedEventBus, Event, configure_event_bus, event_bus
from backend.kit.events import notify_event_listeners
from backend.kit.metrics import JOB_DURATION, JOB_OUTCOMES
from backend.kit.redis import create_redis
from backend.kit.request_context import ClientInfo, bind_request, unbind_request
from backend.kit.storage import get_storage
from backend.settings import Settings
from backend.worker.claim import CYCLE, JOB_EVENT_TYPES, plan_caps
from backend.worker.lease import extend_leases, reap_expired
from backend.worker.maintenance import maintenance_loop
from backend.worker.notify import listen_for_jobs
from backend.worker.outcomes import Finished, describe_outcome, run_handler

logger = logging.getLogger("dossier.worker")

DB_ERRORS = (DBAPIError, OperationalError, InterfaceError, OSError, ConnectionError)


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
        self.storage = get_storage(self.settings)
        logger.info(
            "worker started",
            extra={
                "worker": self.worker_id,
                "concurrency": self.concurrency,
                "types": registry.names(),
            },
        )
        helpers = [
            asyncio.create_task(
                listen_for_jobs(self.database, self._wake, self._stopping), name="worker-listen"
            ),
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
                rows = (await session.execute(CYCLE, params)).all()
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
                outcome = await run_handler(context, self.settings)
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

    # ------------------------------------------------------ heartbeat, reaper
    async def _beat(self) -> None:
        """Extend the leases; stop the jobs whose cancel was requested or
        whose lease another worker took."""
        if not self._running:
            return
        owned = await extend_leases(self.database, self.worker_id, self.settings.job_lease_seconds)
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

    async def _heartbeat(self) -> None:
        interval = max(0.2, self.settings.job_lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
                await reap_expired(self.database)
            except DB_ERRORS as exc:
                logger.warning(
                    "heartbeat failed: database unavailable", extra={"error": type(exc).__name__}
                )

    # ----------------------------------------------------------------- listen
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
