"""The crawl engine against a documentation site served by the test on
127.0.0.1: what the server saw (each URL once, nothing robots.txt
disallows, the User-Agent, the pacing), each page's outcome and Markdown,
the exports built from the stored pages, resume without refetching, stop,
and the SSRF guard at the first request and at every redirect hop."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backend import __version__
from backend.crawls.exports import ExportFormat, ExportPage, build_export
from backend.crawls.fetcher import Fetcher
from backend.crawls.frontier import Crawler, CrawlOptions, KnownPage, PageOutcome
from backend.crawls.sitemap import parse_sitemap
from backend.crawls.urls import Scope, normalise
from backend.settings import Settings
from bench.crawl_site import CRAWL_DELAY, SiteServer, docs_site

MARKERS = ("NAVIGATION", "HEADER", "FOOTER", "SCRIPT", "STYLE", "COOKIE", "ASIDE")


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_allow_private_targets": True,
        "crawl_timeout_seconds": 1.5,
        "crawl_max_page_bytes": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with SiteServer(docs_site()) as server:
        yield server


async def crawl(
    server: SiteServer, known: list[KnownPage] | None = None, **options: Any
) -> tuple[list[PageOutcome], Any]:
    pages: list[PageOutcome] = []

    async def on_page(page: PageOutcome) -> None:
        pages.append(page)

    values: dict[str, Any] = {"url": server.url + "/", "delay_ms": 20, "concurrency": 4}
    values.update(options)
    fetcher = Fetcher(settings(), max_connections=values["concurrency"])
    try:
        stats = await Crawler(CrawlOptions(**values), fetcher, on_page, known=known or ()).run()
    finally:
        await fetcher.aclose()
    return pages, stats


def by_path(server: SiteServer, pages: list[PageOutcome]) -> dict[str, PageOutcome]:
    return {p.url.removeprefix(server.url): p for p in pages}


async def test_crawl_of_the_documentation_site(site: SiteServer) -> None:
    pages, stats = await crawl(site)
    seen = Counter(site.paths())
    pages_by_path = by_path(site, pages)

    # Each URL once; nothing robots.txt disallows; nothing past max_depth.
    assert all(count == 1 for count in seen.values()), seen
    assert not any(p.startswith("/private/") for p in seen)
    assert "/docs/deep/level3.html" not in seen
    assert "/docs/api.html?lang=py&v=1" in seen  # ?v=1&lang=py was the same URL
    assert "/docs/orphan.html" in seen  # only the sitemap (an index's child) lists it
    assert {"/robots.txt", "/sitemap_index.xml", "/sitemap-docs.xml"} <= set(seen)
    assert {r.user_agent for r in site.requests} == {f"DossierCrawler/{__version__}"}

    # Pacing: robots.txt's Crawl-delay (above delay_ms) between request starts.
    starts = sorted(r.at for r in site.requests)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Arrival times carry the machine's jitter (a request held up on its way
    # arrives close to the next one), so the bound is on the whole span —
    # one unpaced request (a redirect hop, say) would break it — and on gaps
    # far below the delay.
    assert starts[-1] - starts[0] >= (len(starts) - 1) * CRAWL_DELAY * 0.97
    assert sum(gap < CRAWL_DELAY / 2 for gap in gaps) <= 2, gaps

    status = {path: p.status for path, p in pages_by_path.items()}
    for path in (
        "/",
        "/docs/install.html",
        "/docs/guide.html",
        "/docs/orphan.html",
        "/docs/deep/level2.html",
        "/docs/readme.md",
        "/old",
    ):
        assert status[path] == "ok", (path, pages_by_path[path].error)
    assert pages_by_path["/old"].final_url == site.url + "/docs/moved.html"
    assert status["/private/secret.html"] == "skipped"
    assert pages_by_path["/private/secret.html"].error == "Disallowed by robots.txt"
    assert (status["/missing.html"], pages_by_path["/missing.html"].status_code) == ("error", 404)
    assert (status["/broken.html"], pages_by_path["/broken.html"].error) == ("error", "HTTP 500")
    assert status["/files/manual.pdf"] == "skipped"
    assert "application/pdf" in (pages_by_path["/files/manual.pdf"].error or "")
    assert status["/docs/big.html"] == "error"
    assert "Larger than 100000 bytes" in (pages_by_path["/docs/big.html"].error or "")
    assert status["/docs/slow.html"] == "error"
    assert "Timed out" in (pages_by_path["/docs/slow.html"].error or "")
    # The same content under several URLs is kept once.
    install_like = ["/docs/install.html", "/docs/copy.html", "/docs/install.html?utm=1"]
    assert [status[p] for p in install_like] == ["ok", "skipped", "skipped"]
    assert pages_by_path["/docs/copy.html"].error == f"Duplicate of {site.url}/docs/install.html"
    api = [status["/docs/api.html?lang=py&v=1"], status["/docs/api.html?lang=py&v=2"]]
    assert sorted(api) == ["ok", "skipped"]
    assert stats.pages_fetched == sum(1 for p in pages if p.status == "ok") == 8
    assert stats.pages_failed == 4
    assert stats.pages_skipped == 5

    # Clean Markdown: content kept, boilerplate gone.
    install = pages_by_path["/docs/install.html"]
    md = install.markdown or ""
    assert install.title == "Install"
    assert md.startswith("# Installing Widget")
    for marker in MARKERS:
        assert marker not in md, marker
    assert "## Requirements" in md
    assert "### Options" in md
    assert "- Python 3.11 or newer" in md
    assert "  - gcc" in md
    assert "1. Create a virtual environment" in md
    assert "```bash\npython -m venv .venv\n.venv/bin/pip install widget\n```" in md
    assert "| Option | Default | Meaning |" in md
    assert "| --jobs | 4 | Parallel builds |" in md
    assert "![Architecture diagram](" in md
    assert f"[guide]({site.url}/docs/guide.html#usage)" in md
    guide = pages_by_path["/docs/guide.html"].markdown or ""
    assert guide.startswith("# User guide")  # the article's own header is content
    assert "```python\nimport widget\nwidget.run(fast=True)\n```" in guide
    api_md = next(p.markdown for p in pages if p.status == "ok" and "/docs/api.html" in p.url)
    assert "```python\ndef run(fast: bool = False) -> None: ...\n```" in (api_md or "")
    readme = pages_by_path["/docs/readme.md"]
    assert readme.content_type == "text/markdown"
    assert readme.title == "Readme"
    assert install.words > 30
    print(f"\ncrawl: {stats.as_dict()}, server requests: {len(site.requests)}")


async def test_exports_from_stored_pages(site: SiteServer) -> None:
    pages, _ = await crawl(site)
    stored = [
        ExportPage(p.url, p.title or "", p.depth, p.markdown or "", p.links)
        for p in pages
        if p.status == "ok"
    ]
    before = len(site.requests)
    base = site.url

    site_md = build_export(ExportFormat.MARKDOWN, "Widget", stored).decode()
    assert site_md.startswith("# Widget\n\n## Contents\n")
    assert "- [Install](#page-docs-install-html)" in site_md
    assert '<a id="page-docs-install-html"></a>\n\n## Install' in site_md
    assert "### Installing Widget" in site_md  # page headings moved under the section
    assert "[guide](#page-docs-guide-html)" in site_md  # internal link -> anchor
    assert f"({base}/docs/guide.html" not in site_md
    for anchor in re.findall(r"\]\(#([\w-]+)\)", site_md):
        assert f'<a id="{anchor}"></a>' in site_md

    site_html = build_export(ExportFormat.HTML, "Widget", stored).decode()
    assert site_html.startswith("<!DOCTYPE html>")
    assert '<section id="page-docs-install-html"><h2>Install</h2>' in site_html
    assert '<a href="#page-docs-guide-html">guide</a>' in site_html
    assert '<code class="language-bash">' in site_html
    assert "<table>" in site_html

    listed = json.loads(build_export(ExportFormat.JSON, "Widget", stored))
    assert {item["url"] for item in listed} == {p.url for p in stored}
    entry = next(item for item in listed if item["url"] == base + "/docs/guide.html")
    assert set(entry) == {"url", "title", "depth", "markdown", "links"}
    assert base + "/docs/deep/level2.html" in entry["links"]

    archive = zipfile.ZipFile(io.BytesIO(build_export(ExportFormat.ZIP, "Widget", stored)))
    names = set(archive.namelist())
    host = "127.0.0.1_" + base.rsplit(":", 1)[1]
    assert {
        "index.md",
        f"{host}/index.md",
        f"{host}/docs/install.md",
        f"{host}/docs/deep/level2.md",
        f"{host}/docs/readme.md",
    } <= names
    install_md = archive.read(f"{host}/docs/install.md").decode()
    assert "[guide](guide.md#usage)" in install_md
    level2 = archive.read(f"{host}/docs/deep/level2.md").decode()
    assert "](level3.html" not in level2  # not crawled: left absolute
    assert f"({base}/docs/deep/level3.html)" in level2
    index = archive.read("index.md").decode()
    for name in names - {"index.md"}:
        assert f"]({name})" in index
    assert len(site.requests) == before  # built from stored pages: no refetch


async def test_resume_does_not_refetch_stored_pages(site: SiteServer) -> None:
    first, first_stats = await crawl(site, max_pages=4)
    assert first_stats.pages_queued > 0
    known = [
        KnownPage(p.url, p.depth, p.status, p.links, p.content_sha256, p.final_url) for p in first
    ]
    second, _ = await crawl(site, known=known)
    fetched = Counter(p for p in site.paths() if not p.startswith(("/robots", "/sitemap")))
    assert all(count == 1 for count in fetched.values()), fetched
    assert not {p.url for p in first} & {p.url for p in second}
    assert len([p for p in first + second if p.status == "ok"]) == 8


async def test_max_pages_include_exclude_and_depth(site: SiteServer) -> None:
    pages, stats = await crawl(site, max_pages=3, respect_robots=False)
    assert sum(1 for p in pages if p.status != "skipped" or p.final_url) <= 3
    assert stats.pages_queued > 0
    pages, _ = await crawl(site, max_depth=0)
    assert [p.url for p in pages] == [site.url + "/"]
    site.requests.clear()
    pages, _ = await crawl(site, include=["/", "/docs/*"], exclude=["/docs/deep/*", "*.md"])
    paths = {p.url.removeprefix(site.url) for p in pages}
    assert "/docs/guide.html" in paths
    assert "/old" not in paths
    assert not any("/deep/" in p or p.endswith(".md") for p in paths)


async def test_stop_ends_the_crawl_within_a_second() -> None:
    with SiteServer(docs_site(slow_seconds=8)) as server:
        pages: list[PageOutcome] = []

        async def on_page(page: PageOutcome) -> None:
            pages.append(page)

        fetcher = Fetcher(settings(crawl_timeout_seconds=10))
        crawler = Crawler(CrawlOptions(url=server.url + "/docs/slow.html"), fetcher, on_page)
        task = asyncio.create_task(crawler.run())
        await asyncio.sleep(0.6)
        stopped_at = time.monotonic()
        crawler.stop()
        await asyncio.wait_for(task, timeout=1)
        assert time.monotonic() - stopped_at < 1
        assert crawler.stopped
        assert pages == []
        await fetcher.aclose()


async def test_ssrf_guard_refuses_private_targets_without_the_setting(site: SiteServer) -> None:
    fetcher = Fetcher(settings(webhook_allow_private_targets=False))
    try:
        result = await fetcher.fetch(site.url + "/")
        assert result.outcome == "error"
        assert result.error is not None
        assert result.error.startswith("unsafe_url")
        for url in ("http://localhost:1/", "http://[::1]/", "http://169.254.169.254/latest"):
            assert (await fetcher.fetch(url)).error.startswith("unsafe_url")  # type: ignore[union-attr]
    finally:
        await fetcher.aclose()
    assert site.requests == []


async def test_ssrf_guard_applies_at_every_redirect_hop() -> None:
    """A public address redirecting to a loopback one: the second hop is
    refused before any connection (a mock transport stands in for the net)."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        if request.url.host == "93.184.216.34":
            return httpx.Response(302, headers={"location": "http://127.0.0.1:8080/admin"})
        return httpx.Response(200, text="secret", headers={"content-type": "text/plain"})

    fetcher = Fetcher(
        settings(webhook_allow_private_targets=False), transport=httpx.MockTransport(answer)
    )
    try:
        result = await fetcher.fetch("http://93.184.216.34/start")
    finally:
        await fetcher.aclose()
    assert sent == ["http://93.184.216.34/start"]
    assert result.outcome == "error"
    assert (result.error or "").startswith("unsafe_url")
    assert result.final_url == "http://127.0.0.1:8080/admin"


async def test_redirect_limit_and_scope(site: SiteServer) -> None:
    def loop(path: str, base: str) -> Any:
        from bench.crawl_site import Reply

        n = int(path.strip("/") or 0)
        return Reply(302, headers=(("Location", f"/{n + 1}"),))

    with SiteServer(loop) as server:
        fetcher = Fetcher(settings())
        result = await fetcher.fetch(server.url + "/0")
        await fetcher.aclose()
    assert result.error == "More than 5 redirects"
    assert server.paths() == ["/0", "/1", "/2", "/3", "/4", "/5"]


def test_normalisation_and_scope() -> None:
    assert normalise("HTTP://Example.COM:80/a/./b/../c?b=2&a=1#frag") == (
        "http://example.com/a/c?a=1&b=2"
    )
    assert normalise("https://example.com:443") == "https://example.com/"
    assert normalise("https://example.com:8443/x") == "https://example.com:8443/x"
    assert normalise("../x.html", "http://h/docs/a/b.html") == "http://h/docs/x.html"
    for refused in ("mailto:a@b.c", "javascript:alert(1)", "ftp://h/x", "http://u:p@h/"):
        assert normalise(refused) is None
    scope = Scope("http://h/docs/", include=("/docs/*",), exclude=("*.pdf",))
    assert scope.allows("http://h/docs/a/b.html")
    assert not scope.allows("http://h/docs/manual.pdf")
    assert not scope.allows("http://h/blog/x")
    assert not scope.allows("http://other/docs/x")
    assert Scope("http://h/", same_host=False).allows("http://other/docs/x")


def test_sitemap_parsing_refuses_entities() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>http://h/&x;</loc></url><url><loc>http://h/b</loc></url></urlset>"
    )
    parsed = parse_sitemap(evil)
    assert "root:" not in "".join(parsed.pages)
    assert "http://h/b" in parsed.pages
    assert parse_sitemap(b"not xml").pages == []
