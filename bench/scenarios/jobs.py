"""Issue 5: the job queue.

* no-op job throughput with 1 and 2 worker processes (4 tasks each) next to a
  bare SKIP LOCKED claim-and-finish loop with the same processes and tasks,
  on the same table (target >= 0.5x);
* latency from `POST /jobs` to the handler starting on an idle worker (p50);
* event fan-out: 500 WebSocket clients of one tenant, time until the last one
  has the `job.progress` event.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

import asyncpg
import httpx

from bench.context import BenchContext
from bench.registry import CustomScenario, Measurement, RunOptions, register

TASKS = 4
SEED = 40_000
WORKER_ENV = {"LOG_LEVEL": "WARNING"}
# The throughput scenarios run the queue's processes (workers, or the bare
# loops) unpinned, on every CPU like PostgreSQL: pinned to the server's half,
# two processes would share one CPU (the HTTP servers are idle meanwhile).
QUEUE_CPUS = None


async def _prepare(ctx: BenchContext) -> Any:
    tenant = await ctx.tenant()
    connection = await asyncpg.connect(ctx.dsn)
    await connection.execute(
        "UPDATE tenants SET limits = limits || '{\"max_running_jobs\": 1000}' WHERE id = $1",
        tenant.id,
    )
    await connection.execute("DELETE FROM jobs")
    await connection.execute(
        "INSERT INTO jobs (id, tenant_id, type, payload, run_after) "
        "SELECT gen_random_uuid(), $1, 'bench.noop', '{}', now() FROM generate_series(1, $2)",
        tenant.id,
        SEED,
    )
    await connection.execute("ANALYZE jobs")
    return connection


async def _count_done(connection: Any) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM jobs WHERE status = 'succeeded'"))


def _bare(processes: int) -> Any:
    async def run(ctx: BenchContext, options: RunOptions) -> Measurement:
        from contextlib import ExitStack

        connection = await _prepare(ctx)
        logs = [ctx.work_dir / f"bare-{index}.txt" for index in range(processes)]
        try:
            started = time.monotonic()
            with ExitStack() as stack:  # unpinned like the workers, for a fair ratio
                children = [
                    stack.enter_context(
                        ctx.process(
                            sys.executable,
                            "-m",
                            "bench.jobs_bare",
                            ctx.dsn,
                            str(TASKS),
                            str(options.duration),
                            log=log,
                            cpus=QUEUE_CPUS,
                        )
                    )
                    for log in logs
                ]
                for child in children:
                    await asyncio.to_thread(child.wait)
            elapsed = time.monotonic() - started
            done = sum(int(log.read_text().strip().splitlines()[-1]) for log in logs)
        finally:
            await connection.close()
        return Measurement(throughput=done / elapsed, unit="jobs/s", count=done, duration_s=elapsed)

    return run


def _workers(processes: int) -> Any:
    async def run(ctx: BenchContext, options: RunOptions) -> Measurement:
        connection = await _prepare(ctx)
        from contextlib import ExitStack

        try:
            with ExitStack() as stack:
                for _ in range(processes):
                    stack.enter_context(
                        ctx.process(
                            sys.executable,
                            "-m",
                            "backend",
                            "worker",
                            "--concurrency",
                            str(TASKS),
                            env=WORKER_ENV,
                            cpus=QUEUE_CPUS,
                        )
                    )
                while await _count_done(connection) == 0:  # start-up is not measured
                    await asyncio.sleep(0.05)
                first = await _count_done(connection)
                started = time.monotonic()
                await asyncio.sleep(options.duration)
                done = await _count_done(connection) - first
                elapsed = time.monotonic() - started
        finally:
            await connection.close()
        return Measurement(throughput=done / elapsed, unit="jobs/s", count=done, duration_s=elapsed)

    return run


async def post_to_start_latency(ctx: BenchContext, options: RunOptions) -> Measurement:
    tenant = await ctx.tenant()
    connection = await asyncpg.connect(ctx.dsn)
    await connection.execute("DELETE FROM jobs")
    headers = ctx.bearer(tenant.owner)
    latencies: list[float] = []
    try:
        with ctx.process(
            sys.executable, "-m", "backend", "worker", "--concurrency", str(TASKS), env=WORKER_ENV
        ):
            async with httpx.AsyncClient(base_url=ctx.app_url, timeout=10) as http:
                await asyncio.sleep(2)  # the worker is up and idle
                deadline = time.monotonic() + options.duration
                while time.monotonic() < deadline:
                    answer = await http.post(
                        "/api/v1/jobs", json={"type": "bench.noop"}, headers=headers
                    )
                    job_id = answer.json()["id"]
                    while True:
                        row = await connection.fetchrow(
                            "SELECT EXTRACT(EPOCH FROM started_at - created_at) * 1000 AS ms "
                            "FROM jobs WHERE id = $1 AND status = 'succeeded'",
                            __import__("uuid").UUID(job_id),
                        )
                        if row is not None:
                            latencies.append(float(row["ms"]))
                            break
                        await asyncio.sleep(0.005)
                    await asyncio.sleep(0.05)  # idle between jobs
    finally:
        await connection.close()
    latencies.sort()
    return Measurement(
        throughput=len(latencies) / options.duration,
        unit="jobs/s",
        count=len(latencies),
        duration_s=options.duration,
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
    )


async def websocket_fanout(ctx: BenchContext, options: RunOptions) -> Measurement:
    from websockets.asyncio.client import connect

    clients = 500
    tenant = await ctx.tenant()
    headers = ctx.bearer(tenant.owner)
    token = headers["Authorization"].removeprefix("Bearer ")
    ws_url = (
        ctx.app_url.replace("http://", "ws://") + f"/api/v1/events?types=job.progress&token={token}"
    )
    sockets = []
    received: list[float] = []
    for _ in range(clients):
        sockets.append(await connect(ws_url, max_queue=None))
    await asyncio.sleep(0.5)

    async def wait_one(ws: Any) -> None:
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "job.progress":
                received.append(time.monotonic())
                return

    try:
        with ctx.process(
            sys.executable, "-m", "backend", "worker", "--concurrency", "1", env=WORKER_ENV
        ):
            await asyncio.sleep(2)
            waiting = [asyncio.create_task(wait_one(ws)) for ws in sockets]
            async with httpx.AsyncClient(base_url=ctx.app_url, timeout=10) as http:
                posted = time.monotonic()
                await http.post("/api/v1/jobs", json={"type": "bench.progress"}, headers=headers)
            await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    first, last = min(received), max(received)
    return Measurement(
        throughput=len(received) / max(last - posted, 1e-6),
        unit="msgs/s",
        count=len(received),
        duration_s=last - posted,
        details={
            "clients": clients,
            "post_to_last_ms": round((last - posted) * 1000, 1),
            "first_to_last_ms": round((last - first) * 1000, 1),
        },
    )


register(
    CustomScenario(
        "jobs-bare-loop-1", _bare(1), description="bare SKIP LOCKED loop, 1 process x 4"
    ),
    CustomScenario(
        "jobs-bare-loop-2", _bare(2), description="bare SKIP LOCKED loop, 2 processes x 4"
    ),
    CustomScenario(
        "jobs-1-worker",
        _workers(1),
        baseline="jobs-bare-loop-1",
        target_ratio=0.5,
        description="no-op jobs, 1 worker process, concurrency 4",
    ),
    CustomScenario(
        "jobs-2-workers",
        _workers(2),
        baseline="jobs-bare-loop-2",
        target_ratio=0.5,
        description="no-op jobs, 2 worker processes, concurrency 4",
    ),
    CustomScenario(
        "jobs-post-to-start",
        post_to_start_latency,
        description="POST /jobs -> handler start on an idle worker (p50 target < 50 ms)",
    ),
    CustomScenario(
        "events-ws-fanout-500",
        websocket_fanout,
        description="500 WebSocket clients of one tenant receive one job.progress",
    ),
)
