"""`validate` and `estimate`: look at a site without crawling it.

* `check_reachable` — robots.txt and one GET of the start URL (through the
  same fetcher, so the SSRF guard and the byte cap hold).
* `estimate` — the sitemap's in-scope URLs, else the start page's in-scope
  links (plus the start page), capped at `max_pages`; the time from the
  per-host pacing (`max(delay_ms, Crawl-delay)`) or, without pacing, the
  concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.crawls.extract import extract
from backend.crawls.fetcher import Fetched, Fetcher
from backend.crawls.frontier import CrawlOptions, read_robots, sitemap_urls
from backend.crawls.robots import Robots
from backend.crawls.urls import Scope, normalise, origin

UNPACED_SECONDS_PER_PAGE = 0.05  # one fetch + extraction on a loopback site, per task


@dataclass(frozen=True, slots=True)
class Reachability:
    robots: Robots
    allowed: bool
    page: Fetched


async def check_reachable(fetcher: Fetcher, url: str, *, respect_robots: bool) -> Reachability:
    robots = await read_robots(fetcher, origin(url))
    allowed = robots.allowed(url)
    page = await fetcher.fetch(url) if allowed or not respect_robots else None
    if page is None:
        page = Fetched(url=url, outcome="skipped", final_url=url, error="Disallowed by robots.txt")
    return Reachability(robots=robots, allowed=allowed, page=page)


@dataclass(frozen=True, slots=True)
class Estimate:
    estimated_pages: int
    method: str
    sitemap_pages: int
    linked_pages: int
    estimated_seconds: float


async def estimate(fetcher: Fetcher, options: CrawlOptions) -> Estimate:
    start = normalise(options.url)
    if start is None:
        raise ValueError("The start URL is not an http(s) URL")
    scope = Scope(start, options.same_host, options.include, options.exclude)
    site = origin(start)
    robots = await read_robots(fetcher, site)
    rules = Robots.allow_all() if not options.respect_robots else robots
    sitemap_pages = 0
    if options.max_depth >= 1:
        async for url in sitemap_urls(fetcher, site, robots, scope):
            if rules.allowed(url):
                sitemap_pages += 1
    linked: set[str] = set()
    page = await fetcher.fetch(start) if rules.allowed(start) else None
    if page is not None and page.outcome == "ok" and options.max_depth >= 1:
        content = extract(page.body, page.final_url, page.content_type, page.charset)
        linked = {u for u in content.links if u != start and scope.allows(u) and rules.allowed(u)}
    reachable = 1 if page is not None and page.outcome == "ok" else 0
    if sitemap_pages:
        method, found = "sitemap", sitemap_pages + (0 if start in linked else reachable)
    else:
        method, found = "links", len(linked) + reachable
    pages = min(options.max_pages, max(found, reachable))
    delay = options.delay_ms / 1000
    if options.respect_robots and robots.crawl_delay_ms is not None:
        delay = max(delay, robots.crawl_delay_ms / 1000)
    per_page = delay if delay > 0 else UNPACED_SECONDS_PER_PAGE / options.concurrency
    return Estimate(
        estimated_pages=pages,
        method=method,
        sitemap_pages=sitemap_pages,
        linked_pages=len(linked),
        estimated_seconds=round(pages * per_page, 1),
    )
