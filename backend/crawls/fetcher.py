"""One GET of one page, the safe way.

* Every hop (the first request and each redirect, at most 5) passes the SSRF
  guard (`backend.kit.security.ssrf`): the host is resolved, every address
  checked, and the request sent to a checked address with the original
  `Host` (and TLS server name), so DNS cannot swing it elsewhere in between.
* Redirects are followed here, never by httpx, and only while the caller's
  scope allows the next URL.
* Bodies are streamed and cut at `CRAWL_MAX_PAGE_BYTES`; each hop must end
  within `CRAWL_TIMEOUT_SECONDS` (a slow-drip server cannot hold a worker).
* Only HTML, Markdown and plain text are read; other types are `skipped`
  without reading their body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import httpx

from backend import __version__
from backend.crawls.urls import normalise
from backend.kit.security.ssrf import UnsafeUrl, pinned_url, resolve_target
from backend.settings import Settings

USER_AGENT = f"DossierCrawler/{__version__}"
MAX_REDIRECTS = 5
KEPT_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/markdown", "text/plain"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Outcome = Literal["ok", "error", "skipped"]


@dataclass(slots=True)
class Fetched:
    url: str
    outcome: Outcome
    final_url: str
    status_code: int | None = None
    content_type: str | None = None
    charset: str | None = None
    body: bytes = b""
    error: str | None = None
    redirects: list[str] = field(default_factory=list)
    elapsed_ms: int = 0


class _Refused(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def media_type(header: str | None) -> tuple[str | None, str | None]:
    """(`type/subtype`, charset) of a Content-Type header."""
    if not header:
        return None, None
    kind, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip().strip('"')
    return kind.strip().lower() or None, charset


class Fetcher:
    """Fetches pages for one crawl; `aclose` when done."""

    def __init__(
        self,
        settings: Settings,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.max_bytes = settings.crawl_max_page_bytes
        self.timeout = settings.crawl_timeout_seconds
        base_headers = {"accept": "text/html,text/markdown,text/plain;q=0.9,*/*;q=0.1"}
        base_headers.update({k.lower(): v for k, v in (headers or {}).items()})
        base_headers["user-agent"] = USER_AGENT
        self._client = httpx.AsyncClient(
            headers=base_headers,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        follow: Callable[[str], str | None] | None = None,
        pace: Callable[[str], Awaitable[None]] | None = None,
        kept_types: frozenset[str] = KEPT_TYPES,
    ) -> Fetched:
        """GET `url`; `follow(next_url)` says why a redirect may not be
        followed (None: follow it; without `follow`, every redirect is);
        `pace(url)` is awaited before each request (politeness)."""
        started = time.monotonic()
        result = Fetched(url=url, outcome="error", final_url=url)
        current = url
        try:
            for hop in range(MAX_REDIRECTS + 1):
                result.final_url = current
                if pace is not None:
                    await pace(current)
                location = await asyncio.wait_for(
                    self._hop(current, result, kept_types), timeout=self.timeout
                )
                if location is None:
                    break
                if hop == MAX_REDIRECTS:
                    raise _Refused("error", f"More than {MAX_REDIRECTS} redirects")
                target = normalise(location, current)
                if target is None:
                    raise _Refused("error", f"Redirect to an unsupported URL: {location[:200]}")
                refusal = follow(target) if follow is not None else None
                if refusal is not None:
                    raise _Refused("skipped", refusal)
                result.redirects.append(target)
                current = target
        except _Refused as exc:
            result.outcome, result.error = exc.outcome, str(exc)
        except UnsafeUrl as exc:
            result.outcome, result.error = "error", f"unsafe_url: {exc.detail}"
        except TimeoutError:
            result.outcome, result.error = "error", f"Timed out after {self.timeout:g} s"
        except httpx.HTTPError as exc:
            result.outcome, result.error = "error", f"{type(exc).__name__}: {exc}"[:500]
        result.elapsed_ms = int((time.monotonic() - started) * 1000)
        return result

    async def _hop(self, url: str, result: Fetched, kept_types: frozenset[str]) -> str | None:
        """One request; the redirect location, or None once `result` is final."""
        target = await resolve_target(self.settings, url, allow_http=True)
        parts = urlsplit(url)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request(
            "GET",
            pinned_url(url, target.addresses[0]),
            headers={"host": parts.netloc},
            extensions=extensions,
        )
        response = await self._client.send(request, stream=True)
        try:
            result.status_code = response.status_code
            location: str | None = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                return location
            kind, charset = media_type(response.headers.get("content-type"))
            result.content_type, result.charset = kind, charset
            if response.status_code >= 400:
                raise _Refused("error", f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise _Refused("skipped", f"HTTP {response.status_code}")
            if kind not in kept_types:
                raise _Refused("skipped", f"Content type {kind or 'unknown'} is not kept")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise _Refused("error", f"Larger than {self.max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise _Refused("error", f"Larger than {self.max_bytes} bytes")
                chunks.append(chunk)
            result.body = b"".join(chunks)
            result.outcome = "ok"
            return None
        finally:
            await response.aclose()
