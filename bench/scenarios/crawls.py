"""Issue 12: the documentation crawler.

* `crawl-2000-pages`: pages per second crawling a loopback static site of
  2,000 article pages (`bench/crawl_site.py`, served by its own process) with
  `delay_ms=0` and concurrency 8, in a process of its own as a worker runs
  it: robots.txt, sitemap, frontier, the SSRF guard at every request,
  extraction and Markdown (target >= 50 pages/s), next to `crawl-bare-httpx`,
  a bare `httpx` loop with 8 tasks GETting the same URLs in the same run.
* `crawl-rss-5000`: peak RSS of a 5,000-page crawl, sampled every 500
  pages; `details.growth_mib` is the RSS at the end minus at 1,000 pages
  (flat: it should not grow with the number of pages).
* `crawl-job-2000` and `crawl-job-rss-5000`: the same through the real
  `web.crawl` job in a `dossier worker` process (each page stored in
  PostgreSQL, progress and the cancel watcher running): pages per second from
  the crawl's own stats, and the worker's RSS sampled as pages are stored.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from backend.audit.models import ActorType
from backend.crawls.schemas import CrawlCreate
from backend.crawls.service import JobActor, crawl_service
from backend.kit.db import scope
from bench.context import BenchContext
from bench.load import ROOT
from bench.registry import CustomScenario, Measurement, RunOptions, register

THROUGHPUT_PAGES = 2000
MEMORY_PAGES = 5000


@contextmanager
def _site(pages: int) -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.crawl_site", str(pages)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().decode().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


async def _run(mode: str, url: str, pages: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.crawl_run",
        mode,
        url,
        str(pages),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def _pages_per_second(mode: str, pages: int) -> Any:
    async def run(ctx: BenchContext, options: RunOptions) -> Measurement:
        with _site(pages) as url:
            result = await _run(mode, url, pages)
        return Measurement(
            throughput=result["pages"] / result["seconds"],
            unit="pages/s",
            count=result["pages"],
            duration_s=result["seconds"],
            errors=result["failed"],
            details={k: v for k, v in result.items() if k not in ("pages", "seconds", "failed")},
        )

    return run


async def _memory(ctx: BenchContext, options: RunOptions) -> Measurement:
    with _site(MEMORY_PAGES) as url:
        result = await _run("crawler", url, MEMORY_PAGES)
    samples = dict(result["rss_samples_mib"])
    growth = samples[max(samples)] - samples[1000]
    return Measurement(
        throughput=result["pages"] / result["seconds"],
        unit="pages/s",
        count=result["pages"],
        duration_s=result["seconds"],
        errors=result["failed"],
        details={
            "peak_rss_mib": result["peak_rss_mib"],
            "rss_samples_mib": result["rss_samples_mib"],
            "growth_mib": round(growth, 1),
        },
    )


def _worker_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _job(pages: int) -> Any:
    async def run(ctx: BenchContext, options: RunOptions) -> Measurement:
        tenant = await ctx.tenant()
        connection = await asyncpg.connect(ctx.dsn)
        await connection.execute(
            "UPDATE tenants SET limits = limits || "
            '\'{"max_running_jobs": 100, "max_crawl_pages": 100000}\' WHERE id = $1',
            tenant.id,
        )
        settings = ctx.settings.model_copy(update={"webhook_allow_private_targets": True})
        env = {"LOG_LEVEL": "WARNING", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
        try:
            with (
                _site(pages) as url,
                ctx.process(
                    sys.executable,
                    "-m",
                    "backend",
                    "worker",
                    "--concurrency",
                    "1",
                    env=env,
                    cpus=None,
                ) as worker,
            ):
                body = CrawlCreate(
                    url=url + "/", max_pages=pages * 2, delay_ms=0, concurrency=8, formats=[]
                )
                async with ctx.database.transaction() as session, scope(session, tenant.id):
                    crawl = await crawl_service.create(
                        session, settings, JobActor(tenant.owner.id, ActorType.USER), body
                    )
                samples: list[tuple[int, float]] = []
                started = time.monotonic()
                while True:
                    row = await connection.fetchrow(
                        "SELECT c.status, c.stats, c.started_at, c.finished_at, j.attempts"
                        " FROM crawls c JOIN jobs j ON j.id = c.job_id WHERE c.id = $1",
                        crawl.id,
                    )
                    stored = await connection.fetchval(
                        "SELECT count(*) FROM crawl_pages WHERE crawl_id = $1", crawl.id
                    )
                    if not samples or stored - samples[-1][0] >= 500:
                        samples.append((int(stored), round(_worker_rss_mib(worker.pid), 1)))
                    if row["status"] in ("succeeded", "failed", "cancelled"):
                        break
                    if time.monotonic() - started > 30 * 60:
                        raise RuntimeError("the crawl did not finish in 30 minutes")
                    await asyncio.sleep(0.2)
                peak = _worker_peak_mib(worker.pid)
        finally:
            await connection.close()
        stats = json.loads(row["stats"]) if isinstance(row["stats"], str) else row["stats"]
        # Wall time of the job, start to finish (the stats' duration_ms counts
        # crawling only, per attempt).
        seconds = (row["finished_at"] - row["started_at"]).total_seconds()
        after_1000 = next((rss for count, rss in samples if count >= 1000), samples[0][1])
        return Measurement(
            throughput=stats["pages_fetched"] / seconds,
            unit="pages/s",
            count=stats["pages_fetched"],
            duration_s=seconds,
            errors=stats["pages_failed"],
            details={
                "status": row["status"],
                "job_attempts": row["attempts"],
                "crawl_duration_ms": stats["duration_ms"],
                "worker_rss_samples_mib": samples,
                "worker_peak_rss_mib": peak,
                "growth_after_1000_pages_mib": round(samples[-1][1] - after_1000, 1),
            },
        )

    return run


def _worker_peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


register(
    CustomScenario(
        "crawl-job-2000",
        _job(THROUGHPUT_PAGES),
        baseline="crawl-bare-httpx",
        description="web.crawl job in a worker, 2,000-page loopback site, delay 0, concurrency 8",
    ),
    CustomScenario(
        "crawl-job-rss-5000",
        _job(MEMORY_PAGES),
        description="worker RSS over a 5,000-page web.crawl job (flat: growth after 1,000 pages)",
    ),
    CustomScenario(
        "crawl-bare-httpx",
        _pages_per_second("bare", THROUGHPUT_PAGES),
        description="bare httpx GET loop, 8 tasks, the 2,000-page site's URLs",
    ),
    CustomScenario(
        "crawl-2000-pages",
        _pages_per_second("crawler", THROUGHPUT_PAGES),
        baseline="crawl-bare-httpx",
        description="crawl of a 2,000-page loopback site, delay 0, concurrency 8 (>= 50 pages/s)",
    ),
    CustomScenario(
        "crawl-rss-5000",
        _memory,
        description="peak RSS over a 5,000-page crawl (flat: growth after 1,000 pages)",
    ),
)
