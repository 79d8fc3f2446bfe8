"""One crawl in a process of its own, as a worker runs it, for the crawl
benchmarks: `python -m bench.crawl_run MODE URL PAGES` prints one JSON line.

* `crawler` — the crawl engine (robots.txt, sitemap, frontier, fetcher with
  the SSRF guard, extraction and Markdown), `delay_ms=0`, concurrency 8;
  each page's Markdown is hashed and dropped, as the job does after storing
  it. RSS is sampled every 500 pages.
* `bare` — the baseline: a plain `httpx` loop with 8 tasks GETting the same
  URLs (no robots, no parsing, no checks).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

import httpx

from backend.crawls.fetcher import Fetcher
from backend.crawls.frontier import Crawler, CrawlOptions, PageOutcome
from backend.settings import Settings
from bench.crawl_site import static_site_urls

CONCURRENCY = 8


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def crawler(url: str, pages: int) -> dict[str, object]:
    settings = Settings(webhook_allow_private_targets=True)
    samples: list[tuple[int, float]] = []
    count = 0

    async def on_page(page: PageOutcome) -> None:
        nonlocal count
        count += 1
        if count % 500 == 0:
            samples.append((count, round(rss_mib(), 1)))

    fetcher = Fetcher(settings, max_connections=CONCURRENCY)
    options = CrawlOptions(
        url=url + "/", max_depth=2, max_pages=pages * 2, delay_ms=0, concurrency=CONCURRENCY
    )
    started = time.perf_counter()
    stats = await Crawler(options, fetcher, on_page).run()
    elapsed = time.perf_counter() - started
    await fetcher.aclose()
    return {
        "pages": stats.pages_fetched,
        "failed": stats.pages_failed,
        "seconds": elapsed,
        "rss_samples_mib": samples,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def bare(url: str, pages: int) -> dict[str, object]:
    urls = static_site_urls(url, pages)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for item in urls:
        queue.put_nowait(item)
    done = 0
    failed = 0

    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=CONCURRENCY), trust_env=False
    ) as client:

        async def work() -> None:
            nonlocal done, failed
            while not queue.empty():
                response = await client.get(queue.get_nowait())
                if response.status_code == 200:
                    done += 1
                else:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return {"pages": done, "failed": failed, "seconds": elapsed}


def main() -> None:
    mode, url, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = crawler if mode == "crawler" else bare
    print(json.dumps(asyncio.run(run(url, pages))), flush=True)


if __name__ == "__main__":
    main()
