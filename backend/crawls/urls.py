"""URL normalisation and scope rules of the crawler.

A URL is fetched at most once per crawl under its normal form: scheme and
host lower-cased, the default port dropped, `.`/`..` path segments resolved,
an empty path made `/`, query parameters sorted (so `?b=2&a=1` and
`?a=1&b=2` are one page; different values stay different pages) and the
fragment dropped. Links carrying credentials are not followed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(url: str, base: str | None = None) -> str | None:
    """The normal form of `url` (resolved against `base`), or None when it
    is not an http(s) URL with a host, or carries credentials."""
    url = url.strip()
    if base is not None:
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(parts.path or "/")
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True))) if parts.query else ""
    return urlunsplit((scheme, netloc, path, query, ""))


def _remove_dot_segments(path: str) -> str:
    if "/." not in path and not path.startswith("."):
        return path
    resolved = posixpath.normpath(path)
    if path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    return resolved if resolved.startswith("/") else "/" + resolved.lstrip("./")


def origin(url: str) -> str:
    """`scheme://host[:port]` of a normalised URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which discovered URLs a crawl may follow."""

    start: str
    same_host: bool = True
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()

    def allows(self, url: str) -> bool:
        if self.same_host and origin(url) != origin(self.start):
            return False
        path = urlsplit(url).path or "/"
        if self.include and not any(fnmatchcase(path, pattern) for pattern in self.include):
            return False
        return not any(fnmatchcase(path, pattern) for pattern in self.exclude)
