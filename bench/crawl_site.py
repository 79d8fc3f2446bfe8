"""Generated websites served on 127.0.0.1 for the crawler's tests and
benchmark, with a record of every request the server saw.

* `docs_site()` — a small documentation site with every trap the crawler
  must handle (robots.txt rules and crawl delay, a sitemap index listing an
  unlinked page, boilerplate around articles, fragments and query variants,
  a link loop, duplicate content, a redirect chain, 404/500, a PDF, an
  oversized page, a slow page, a Markdown page), plus its ground truth.
* `static_site(n)` — `n` plain article pages reachable within depth 2, built
  on demand (nothing held in memory), for throughput and memory runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    at: float
    path: str
    user_agent: str
    headers: dict[str, str]


Site = Callable[[str, str], Reply | None]  # (path with query, base url) -> reply


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, stopped crawls) are expected


@dataclass
class SiteServer:
    """`with SiteServer(site) as server:` serves `site` at `server.url`."""

    site: Site
    requests: list[Seen] = field(default_factory=list)
    record: bool = True

    def __enter__(self) -> SiteServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if owner.record:
                    owner.requests.append(
                        Seen(
                            time.monotonic(),
                            self.path,
                            self.headers.get("User-Agent", ""),
                            {k.lower(): v for k, v in self.headers.items()},
                        )
                    )
                reply = owner.site(self.path, owner.url) or Reply(404, b"Not found", "text/plain")
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]


# -- the documentation site ---------------------------------------------------

CRAWL_DELAY = 0.1
NAV = (
    '<nav class="menu"><a href="/">Home</a> <a href="/docs/install.html">Install</a> '
    '<a href="/docs/guide.html">Guide</a> <a href="/docs/api.html?lang=py&amp;v=1">API</a> '
    "NAVIGATION-MARKER</nav>"
)


ASIDE = '<aside class="sidebar">ASIDE-MARKER <a href="/docs/guide.html">Guide</a></aside>'


def _page(
    title: str, article: str, *, extra_links: str = "", nav: str = NAV, aside: str = ASIDE
) -> bytes:
    return (
        "<!DOCTYPE html><html><head>"
        f"<title>{title}</title><style>body {{ color: red }} STYLE-MARKER</style>"
        '<script>console.log("SCRIPT-MARKER")</script></head><body>'
        f'<header class="site-header"><a href="/">Docs</a> HEADER-MARKER</header>{nav}'
        '<div id="cookie-consent">We use cookies. COOKIE-MARKER</div>'
        f"<main>{article}</main>"
        f"{aside}"
        f"<footer>(c) 2026 FOOTER-MARKER {extra_links}</footer>"
        '<script src="/static/app.js"></script></body></html>'
    ).encode()


INSTALL = """
<h1>Installing Widget</h1>
<p>Widget installs with <code>pip</code>. See the <a href="/docs/guide.html#usage">guide</a>.</p>
<h2>Requirements</h2>
<ul><li>Python 3.11 or newer</li><li>A C compiler
  <ul><li>gcc</li><li>clang</li></ul></li></ul>
<h2>Steps</h2>
<ol><li>Create a virtual environment</li><li>Install the package</li></ol>
<pre><code class="language-bash">python -m venv .venv
.venv/bin/pip install widget</code></pre>
<h3>Options</h3>
<table><thead><tr><th>Option</th><th>Default</th><th>Meaning</th></tr></thead>
<tbody><tr><td><code>--fast</code></td><td>off</td><td>Skips checks</td></tr>
<tr><td>--jobs</td><td>4</td><td>Parallel builds</td></tr></tbody></table>
<p><img src="/img/arch.png" alt="Architecture diagram"></p>
"""

GUIDE = """
<article><header><h1>User guide</h1></header>
<h2 id="usage">Usage</h2>
<p>Import widget and call it:</p>
<div class="highlight highlight-source-python"><pre>import widget
widget.run(fast=True)</pre></div>
<p>Continue with the <a href="/docs/deep/level2.html">advanced topics</a>,
the <a href="/docs/readme.md">readme</a>, or go
<a href="/docs/guide.html">back to this page</a>.</p>
<p>Also <a href="/docs/install.html#steps">installation steps</a> and
<a href="./install.html?utm=1#x">install with a query</a>.</p>
</article>
"""

API = """
<h1>API reference</h1>
<p>The function <code>widget.run</code> takes keyword arguments.</p>
<pre data-lang="python">def run(fast: bool = False) -&gt; None: ...</pre>
"""

README_MD = b"""# Readme

Plain Markdown served as text/markdown, linking [home](/) and [the orphan](orphan.html).
"""


def docs_site(*, big_bytes: int = 200_000, slow_seconds: float = 3.0) -> Site:
    """The documentation site (see the module docstring)."""
    pages: dict[str, Reply] = {
        "/": Reply(
            body=_page(
                "Widget docs",
                "<h1>Widget documentation</h1><p>Start with "
                '<a href="/docs/install.html">installing</a> (or '
                '<a href="/docs/install.html#requirements">its requirements</a>), then the '
                '<a href="/docs/guide.html">guide</a>.</p><ul>'
                '<li><a href="/docs/api.html?v=1&amp;lang=py">API (other order)</a></li>'
                '<li><a href="/docs/api.html?lang=py&amp;v=2">API v2 (same content)</a></li>'
                '<li><a href="/docs/copy.html">Install (copy)</a></li>'
                '<li><a href="/private/secret.html">Secret</a></li>'
                '<li><a href="/old">Old page</a></li>'
                '<li><a href="/missing.html">Missing</a></li>'
                '<li><a href="/broken.html">Broken</a></li>'
                '<li><a href="/files/manual.pdf">Manual (PDF)</a></li>'
                '<li><a href="/docs/big.html">Big</a></li>'
                '<li><a href="/docs/slow.html">Slow</a></li>'
                '<li><a href="mailto:docs@example.com">Mail</a></li>'
                '<li><a href="javascript:alert(1)">JS</a></li>'
                '<li><a href="https://user:pw@example.com/">Creds</a></li>'
                '<li><a href="http://other.invalid/page">Elsewhere</a></li></ul>',
            )
        ),
        "/docs/install.html": Reply(body=_page("Install", INSTALL)),
        "/docs/copy.html": Reply(body=_page("Install", INSTALL)),
        "/docs/guide.html": Reply(body=_page("Guide", GUIDE)),
        "/docs/api.html?lang=py&v=1": Reply(body=_page("API", API)),
        "/docs/api.html?lang=py&v=2": Reply(body=_page("API", API)),
        "/docs/deep/level2.html": Reply(
            body=_page("Level 2", '<h1>Level 2</h1><p><a href="level3.html">deeper</a></p>')
        ),
        "/docs/deep/level3.html": Reply(body=_page("Level 3", "<h1>Level 3</h1>")),
        "/docs/orphan.html": Reply(
            body=_page("Orphan", "<h1>Orphan page</h1><p>Only the sitemap lists me.</p>")
        ),
        "/docs/moved.html": Reply(
            body=_page("Moved", "<h1>Moved page</h1><p>Reached through redirects.</p>")
        ),
        "/docs/readme.md": Reply(body=README_MD, content_type="text/markdown; charset=utf-8"),
        "/private/secret.html": Reply(body=_page("Secret", "<h1>Secret</h1>")),
        "/old": Reply(301, headers=(("Location", "/older"),)),
        "/older": Reply(302, headers=(("Location", "/docs/moved.html"),)),
        "/broken.html": Reply(500, b"Internal error", "text/plain"),
        "/files/manual.pdf": Reply(body=b"%PDF-1.4\n%%EOF\n", content_type="application/pdf"),
        "/docs/big.html": Reply(
            body=b"<html><body><main>" + b"x" * big_bytes + b"</main></body></html>"
        ),
        "/docs/slow.html": Reply(body=_page("Slow", "<h1>Slow</h1>"), delay=slow_seconds),
    }

    def serve(path: str, base: str) -> Reply | None:
        if path == "/robots.txt":
            return Reply(
                body=(
                    "User-agent: *\nDisallow: /private/\n"
                    f"Crawl-delay: {CRAWL_DELAY}\nSitemap: {base}/sitemap_index.xml\n"
                ).encode(),
                content_type="text/plain",
            )
        if path == "/sitemap_index.xml":
            return Reply(
                body=(
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    f"<sitemap><loc>{base}/sitemap-docs.xml</loc></sitemap></sitemapindex>"
                ).encode(),
                content_type="application/xml",
            )
        if path == "/sitemap-docs.xml":
            locs = ["/docs/install.html", "/docs/orphan.html", "/private/secret.html"]
            return Reply(
                body=(
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    + "".join(f"<url><loc>{base}{loc}</loc></url>" for loc in locs)
                    + "</urlset>"
                ).encode(),
                content_type="application/xml",
            )
        # Unknown query parameters (tracking and the like) serve the page.
        return pages.get(path) or pages.get(path.partition("?")[0])

    return serve


# -- the static site for throughput and memory ---------------------------------

STATIC_ASIDE = '<aside class="sidebar">ASIDE-MARKER <a href="/">Home</a></aside>'
STATIC_NAV = '<nav><a href="/">Home</a> <a href="/section-0/">First section</a></nav>'
FILLER = (
    "<p>Widgets are configured through a small set of options. Each option has a "
    "default that suits most installations; change it only when you know why.</p>"
) * 6


def static_page_path(i: int) -> str:
    return f"/section-{i // 50}/page-{i}.html"


def static_site(pages: int) -> Site:
    """`pages` article pages: the home page links every section, each section
    page links its 50 pages (so all are within depth 2)."""
    sections = (pages + 49) // 50

    def serve(path: str, base: str) -> Reply | None:
        if path in ("/robots.txt", "/sitemap.xml"):
            return None
        if path == "/":
            links = "".join(
                f'<li><a href="/section-{s}/">Section {s}</a></li>' for s in range(sections)
            )
            return Reply(
                body=_page(
                    "Home", f"<h1>Home</h1><ul>{links}</ul>", nav=STATIC_NAV, aside=STATIC_ASIDE
                )
            )
        parts = path.strip("/").split("/")
        if not parts[0].startswith("section-"):
            return None
        try:
            section = int(parts[0].removeprefix("section-"))
        except ValueError:
            return None
        if len(parts) == 1:
            links = "".join(
                f'<li><a href="{static_page_path(i)}">Page {i}</a></li>'
                for i in range(section * 50, min(pages, section * 50 + 50))
            )
            article = f"<h1>Section {section}</h1><ul>{links}</ul>"
            return Reply(
                body=_page(f"Section {section}", article, nav=STATIC_NAV, aside=STATIC_ASIDE)
            )
        try:
            number = int(parts[1].removeprefix("page-").removesuffix(".html"))
        except ValueError:
            return None
        if number >= pages or number // 50 != section:
            return None
        article = (
            f"<h1>Page {number}</h1>{FILLER}<h2>Example</h2>"
            f'<pre><code class="language-python">print({number})</code></pre>'
            f'<p>Next: <a href="{static_page_path((number + 1) % pages)}">page</a></p>'
        )
        return Reply(body=_page(f"Page {number}", article, nav=STATIC_NAV, aside=STATIC_ASIDE))

    return serve


def static_site_urls(base: str, pages: int) -> list[str]:
    """Every URL a full crawl of `static_site(pages)` fetches."""
    sections = (pages + 49) // 50
    return (
        [f"{base}/"]
        + [f"{base}/section-{s}/" for s in range(sections)]
        + [base + static_page_path(i) for i in range(pages)]
    )


def main() -> None:
    """`python -m bench.crawl_site PAGES`: serve `static_site(PAGES)` until
    killed, printing the base URL first."""
    import sys

    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with SiteServer(static_site(pages), record=False) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
