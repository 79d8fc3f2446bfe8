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
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


register(
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
