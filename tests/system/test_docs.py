"""`/docs`, `/redoc` and `/`: the docs pages and every asset they reference
come from Dossier itself, and no page names another host.

What the bundles do once running (requests they make) is the browser test's
part (`test_docs_browser.py`): it records every request the pages make.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from backend.system.docs import SAME_ORIGIN_ONLY

PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
HOST = "testserver"
# An absolute (`scheme://host`) or protocol-relative (`//host`) address.
ABSOLUTE_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*:)?//([a-z0-9-]+(?:\.[a-z0-9-]+)+)", re.I)
# Swagger UI's inline start-up names the description to load as `url: '...'`.
INLINE_URL = re.compile(r"""\burl:\s*['"]([^'"]+)['"]""")
# What a stylesheet loads: `url(...)` (a CSS string either way, with its
# escapes, or bare) and `@import`.
CSS_URL = re.compile(
    r"""url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)'"\s]+))\s*\)"""
    r"""|@import\s+["']([^"']+)["']"""
)
CONTENT_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


class References(HTMLParser):
    """The addresses a page loads or links to: `src`, `href`, ReDoc's `spec-url`."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)


def outside_hosts(text: str) -> list[str]:
    return [host for host in ABSOLUTE_URL.findall(text) if host.lower() != HOST]


def referenced(page: str) -> list[str]:
    parser = References()
    parser.feed(page)
    return [*parser.urls, *INLINE_URL.findall(page)]


async def fetch_asset(client: httpx.AsyncClient, url: str) -> httpx.Response:
    address = urlsplit(url)
    assert address.scheme in {"", "http"}, url
    assert address.netloc in {"", HOST}, f"{url} is on another host"
    response = await client.get(address.path)
    assert response.status_code == 200, url
    assert response.content, url
    suffix = address.path[address.path.rfind(".") :]
    assert CONTENT_TYPES[suffix] in response.headers["content-type"], url
    return response


@pytest.mark.parametrize("path", PAGES)
async def test_page_names_no_other_host_and_allows_none(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert outside_hosts(response.text) == []
    # The browser itself refuses any load from another origin.
    assert response.headers["content-security-policy"] == SAME_ORIGIN_ONLY


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
async def test_every_asset_a_page_references_is_served_by_dossier(
    client: httpx.AsyncClient, path: str, expected: set[str]
) -> None:
    page = (await client.get(path)).text
    urls = referenced(page)
    assert {url.rsplit("/", 1)[-1] for url in urls} == expected
    for url in urls:
        response = await fetch_asset(client, urljoin(f"http://{HOST}{path}", url))
        if url.endswith(".css"):
            # What a stylesheet loads in turn: inline `data:` images (whose SVG
            # namespaces are no address), else files of this host.
            loads = [
                next(value for value in groups if value)
                for groups in CSS_URL.findall(response.text)
            ]
            assert loads
            for inner in loads:
                if not inner.startswith("data:"):
                    await fetch_asset(client, urljoin(f"http://{HOST}{url}", inner))
            assert outside_hosts(CSS_URL.sub("", response.text)) == []


async def test_swagger_ui_offers_the_password_flow_and_keeps_authorisation(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/docs")).text
    assert '"persistAuthorization": true' in page
    assert '"validatorUrl": null' in page  # no call to the online validator
    # The password form's `tokenUrl`: tests/auth/test_flows.py.
    schemes = (await client.get("/openapi.json")).json()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


async def test_pages_and_assets_are_not_in_the_openapi_description(app: Any) -> None:
    paths = app.openapi()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]


async def test_missing_asset_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/assets/no-such-file.js")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_root_points_to_docs_openapi_health_and_version(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Dossier"
    assert body["version"] == (await client.get("/version")).json()["version"]
    assert body["links"] == {
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/health",
        "ready": "/ready",
        "version": "/version",
    }
    for link in body["links"].values():
        assert (await client.get(link)).status_code == 200, link


async def test_root_links_follow_a_mount_prefix(app: Any) -> None:
    """Behind a proxy that mounts Dossier under a prefix (ASGI `root_path`), the
    pointer and the pages name the prefixed addresses."""
    transport = httpx.ASGITransport(app=app, root_path="/dossier")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as prefixed:
        links = (await prefixed.get("/")).json()["links"]
        page = (await prefixed.get("/docs")).text
    assert links["docs"] == "/dossier/docs"
    assert links["openapi"] == "/dossier/openapi.json"
    assert "/dossier/docs/assets/swagger-ui-bundle.js" in page
    assert "url: '/dossier/openapi.json'" in page
