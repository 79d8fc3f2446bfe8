"""The crawl loop: a breadth-first frontier worked by `concurrency` tasks.

* Each normalised URL is taken at most once (`seen`), robots.txt is read once
  per origin (and obeyed when `respect_robots`), and requests to one origin
  start at least `max(delay_ms, robots Crawl-delay)` apart.
* `sitemap.xml` (and the sitemaps robots.txt names, sitemap indexes
  included) seeds the frontier at depth 1 with pages no link reaches.
* Pages whose Markdown hashes like an earlier page's are reported `skipped`
  (duplicate) and their content is not kept twice.
* `known` pages (stored by an earlier run of the same crawl) are not fetched
  again: their stored links are expanded as if they had just been fetched.
* `stop()` ends the crawl promptly: in-flight fetches and politeness waits
  are abandoned, a page being reported is finished first.

The crawler knows nothing of the database: it hands each page to `on_page`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from backend.crawls.extract import Extracted, extract
from backend.crawls.fetcher import Fetcher
from backend.crawls.robots import Robots
from backend.crawls.sitemap import parse_sitemap
from backend.crawls.urls import Scope, normalise, origin

T = TypeVar("T")
PageStatus = Literal["ok", "error", "skipped"]
MAX_SITEMAPS = 20
MAX_SITEMAP_URLS = 50_000
SITEMAP_TYPES = frozenset(
    {
        "application/xml",
        "text/xml",
        "application/gzip",
        "application/x-gzip",
        "text/plain",
        "application/octet-stream",
    }
)


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    url: str
    max_depth: int = 2
    max_pages: int = 100
    same_host: bool = True
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    respect_robots: bool = True
    delay_ms: int = 200
    concurrency: int = 4


@dataclass(slots=True)
class PageOutcome:
    url: str
    depth: int
    status: PageStatus
    final_url: str | None = None
    status_code: int | None = None
    content_type: str | None = None
    title: str | None = None
    markdown: str | None = None
    links: list[str] = field(default_factory=list)
    words: int = 0
    content_sha256: str | None = None
    size: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class KnownPage:
    """A page stored by an earlier run of the crawl."""

    url: str
    depth: int
    status: PageStatus
    links: Sequence[str] = ()
    content_sha256: str | None = None
    final_url: str | None = None


@dataclass(slots=True)
class CrawlStats:
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    pages_queued: int = 0
    bytes: int = 0
    duration_ms: int = 0

    def count(self, page: PageOutcome) -> None:
        if page.status == "ok":
            self.pages_fetched += 1
        elif page.status == "error":
            self.pages_failed += 1
        else:
            self.pages_skipped += 1
        self.bytes += page.size

    def as_dict(self) -> dict[str, int]:
        return {
            "pages_fetched": self.pages_fetched,
            "pages_failed": self.pages_failed,
            "pages_skipped": self.pages_skipped,
            "pages_queued": self.pages_queued,
            "bytes": self.bytes,
            "duration_ms": self.duration_ms,
        }


@dataclass(slots=True)
class _Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    robots_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_at: float = float("-inf")
    robots: Robots | None = None
    delay: float = 0.0


Extractor = Callable[[bytes, str, str | None, str | None], Coroutine[Any, Any, Extracted]]


async def _inline_extract(
    body: bytes, url: str, content_type: str | None, charset: str | None
) -> Extracted:
    return extract(body, url, content_type, charset)


class _Halted(Exception):
    pass


class Crawler:
    def __init__(
        self,
        options: CrawlOptions,
        fetcher: Fetcher,
        on_page: Callable[[PageOutcome], Awaitable[None]],
        *,
        known: Sequence[KnownPage] = (),
        extractor: Extractor = _inline_extract,
        stats: CrawlStats | None = None,
    ) -> None:
        start = normalise(options.url)
        if start is None:
            raise ValueError("The start URL is not an http(s) URL")
        self.start = start
        self.options = options
        self.scope = Scope(start, options.same_host, options.include, options.exclude)
        self.fetcher = fetcher
        self.on_page = on_page
        self.extractor = extractor
        self.stats = stats or CrawlStats()
        self._known = {page.url: page for page in known}
        self._hashes: dict[str, str] = {
            page.content_sha256: page.url
            for page in known
            if page.status == "ok" and page.content_sha256
        }
        # Known pages are found again by the same breadth-first walk (their
        # stored links stand in for a fetch); the pages they redirected to
        # count as taken.
        self._seen: set[str] = {
            page.final_url
            for page in known
            if page.final_url and page.final_url != page.url and page.final_url not in self._known
        }
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._hosts: dict[str, _Host] = {}
        self._claimed = sum(1 for page in known if page.status != "skipped")
        self._halt = asyncio.Event()
        self._over_limit = 0
        self.stopped = False

    def stop(self) -> None:
        """End the crawl as soon as possible (cancel)."""
        self.stopped = True
        self._halt.set()

    # -- the loop -----------------------------------------------------------

    async def run(self) -> CrawlStats:
        started = time.monotonic()
        self._enqueue(self.start, 0, force=True)
        if self.options.max_depth >= 1:
            with contextlib.suppress(_Halted):
                await self._race(self._seed_from_sitemaps())
        workers = [asyncio.create_task(self._work()) for _ in range(self.options.concurrency)]
        drained = asyncio.create_task(self._queue.join())
        halted = asyncio.create_task(self._halt.wait())
        try:
            await asyncio.wait({drained, halted}, return_when=asyncio.FIRST_COMPLETED)
            self._halt.set()
            await asyncio.gather(*workers)
        finally:
            # Cancelled from outside (a worker shutting down): no task of
            # this crawl may outlive it and go on fetching or storing.
            self._halt.set()
            for task in (*workers, drained, halted):
                task.cancel()
            await asyncio.gather(*workers, drained, halted, return_exceptions=True)
        self.stats.pages_queued = self._queue.qsize() + self._over_limit
        self.stats.duration_ms += int((time.monotonic() - started) * 1000)
        return self.stats

    async def _race(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` unless the crawl halts first (then `_Halted`)."""
        if self._halt.is_set():
            coroutine.close()
            raise _Halted
        task = asyncio.ensure_future(coroutine)
        halt = asyncio.ensure_future(self._halt.wait())
        try:
            done, _ = await asyncio.wait({task, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise _Halted

    async def _work(self) -> None:
        while True:
            try:
                url, depth = await self._race(self._queue.get())
            except _Halted:
                return
            try:
                await self._process(url, depth)
            except _Halted:
                return
            finally:
                self._queue.task_done()

    def _enqueue(self, url: str, depth: int, *, force: bool = False) -> None:
        if url in self._seen and not force:
            return
        self._seen.add(url)
        self._queue.put_nowait((url, depth))

    def _expand(self, links: Sequence[str], depth: int) -> None:
        if depth >= self.options.max_depth:
            return
        for link in links:
            if link not in self._seen and self.scope.allows(link):
                self._enqueue(link, depth + 1)

    # -- one page -----------------------------------------------------------

    async def _process(self, url: str, depth: int) -> None:
        known = self._known.get(url)
        if known is not None:
            if known.status == "ok":
                self._expand(known.links, depth)
            return
        host = await self._host(origin(url))
        robots = host.robots
        if self.options.respect_robots and robots is not None and not robots.allowed(url):
            reason = (
                "robots.txt could not be read" if robots.unreachable else "Disallowed by robots.txt"
            )
            await self._report(PageOutcome(url=url, depth=depth, status="skipped", error=reason))
            return
        if self._claimed >= self.options.max_pages:
            self._over_limit += 1  # found in scope, left unfetched: `pages_queued`
            return
        self._claimed += 1
        fetched = await self._race(
            self.fetcher.fetch(url, follow=self._may_follow, pace=self._wait_turn)
        )
        page = PageOutcome(
            url=url,
            depth=depth,
            status=fetched.outcome,
            final_url=fetched.final_url,
            status_code=fetched.status_code,
            content_type=fetched.content_type,
            error=fetched.error,
            size=len(fetched.body),
        )
        for hop in fetched.redirects:
            self._seen.add(hop)
        if fetched.outcome == "ok":
            content = await self._race(
                self.extractor(
                    fetched.body, fetched.final_url, fetched.content_type, fetched.charset
                )
            )
            digest = hashlib.sha256(content.markdown.encode()).hexdigest()
            page.title, page.links, page.words = content.title, content.links, content.words
            page.content_sha256 = digest
            first = self._hashes.setdefault(digest, url)
            if first != url:
                page.status, page.error = "skipped", f"Duplicate of {first}"
            else:
                page.markdown = content.markdown
            self._expand(content.links, depth)
        await self._report(page)

    async def _report(self, page: PageOutcome) -> None:
        self.stats.count(page)
        await self.on_page(page)

    async def _wait_turn(self, url: str) -> None:
        """Politeness: requests to one origin start `delay` apart."""
        site = origin(url)
        host = self._hosts.get(site)
        if host is None:
            host = self._hosts[site] = _Host(delay=self.options.delay_ms / 1000)
        async with host.lock:
            wait = host.last_at + host.delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            host.last_at = time.monotonic()

    def _may_follow(self, url: str) -> str | None:
        """Why a redirect to `url` is not followed (None: follow it, and
        count it as taken, so it is not fetched again under its own name)."""
        if not self.scope.allows(url):
            return f"Redirected out of the crawl's scope: {url}"
        host = self._hosts.get(origin(url))
        robots = host.robots if host is not None else None
        if self.options.respect_robots and robots is not None and not robots.allowed(url):
            return f"Redirected to a page robots.txt disallows: {url}"
        if url in self._seen:
            return f"Redirected to a page already crawled: {url}"
        self._seen.add(url)
        return None

    async def _host(self, site: str) -> _Host:
        host = self._hosts.get(site)
        if host is None:
            host = self._hosts[site] = _Host(delay=self.options.delay_ms / 1000)
        if host.robots is None:
            async with host.robots_lock:
                if host.robots is None:
                    robots = await self._race(self._read_robots(site))
                    if self.options.respect_robots and robots.crawl_delay_ms is not None:
                        host.delay = max(host.delay, robots.crawl_delay_ms / 1000)
                    host.robots = robots
        return host

    async def _read_robots(self, site: str) -> Robots:
        return await read_robots(self.fetcher, site, pace=self._wait_turn)

    async def _seed_from_sitemaps(self) -> None:
        site = origin(self.start)
        host = await self._host(site)
        robots = host.robots or Robots.allow_all()
        async for url in sitemap_urls(self.fetcher, site, robots, self.scope, pace=self._wait_turn):
            self._enqueue(url, 1)


Pace = Callable[[str], Awaitable[None]]


async def read_robots(fetcher: Fetcher, site: str, *, pace: Pace | None = None) -> Robots:
    """The robots.txt rules of `site` (`scheme://host[:port]`)."""
    fetched = await fetcher.fetch(
        f"{site}/robots.txt", pace=pace, kept_types=frozenset({"text/plain"})
    )
    if fetched.outcome == "ok":
        return Robots(fetched.body.decode("utf-8", errors="replace"))
    if fetched.status_code is not None and 400 <= fetched.status_code < 500:
        return Robots.allow_all()
    if fetched.outcome == "skipped" and fetched.status_code == 200:
        return Robots.allow_all()  # served, but not as text: no usable rules
    return Robots.disallow_all()


async def sitemap_urls(
    fetcher: Fetcher, site: str, robots: Robots, scope: Scope, *, pace: Pace | None = None
) -> AsyncIterator[str]:
    """In-scope page URLs listed by `site/sitemap.xml` and the sitemaps
    robots.txt names, following sitemap indexes (at most 20 sitemaps and
    50,000 URLs; each URL once)."""
    pending = [f"{site}/sitemap.xml", *robots.sitemaps]
    done: set[str] = set()
    listed: set[str] = set()
    while pending and len(done) < MAX_SITEMAPS:
        location = normalise(pending.pop(0))
        if location is None or location in done:
            continue
        done.add(location)
        fetched = await fetcher.fetch(location, pace=pace, kept_types=SITEMAP_TYPES)
        if fetched.outcome != "ok":
            continue
        listing = parse_sitemap(fetched.body)
        pending.extend(listing.sitemaps)
        for entry in listing.pages:
            url = normalise(entry)
            if url is not None and url not in listed and scope.allows(url):
                listed.add(url)
                yield url
                if len(listed) >= MAX_SITEMAP_URLS:
                    return
