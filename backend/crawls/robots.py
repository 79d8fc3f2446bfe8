"""robots.txt rules for one origin, read with Protego (a maintained parser
of the RFC 9309 syntax, including wildcards, `Allow` precedence,
`Crawl-delay` and `Sitemap`).

As RFC 9309 says: a robots.txt answering 4xx means no rules (everything is
allowed); one that cannot be read (5xx, network error) means nothing is
allowed.
"""

from __future__ import annotations

from protego import Protego

PRODUCT_TOKEN = "DossierCrawler"  # noqa: S105 - the user agent's product token
MAX_CRAWL_DELAY_MS = 10_000


class Robots:
    def __init__(self, text: str | None, *, unreachable: bool = False) -> None:
        self.unreachable = unreachable
        self._rules = Protego.parse(text or "")

    @classmethod
    def allow_all(cls) -> Robots:
        return cls(None)

    @classmethod
    def disallow_all(cls) -> Robots:
        return cls(None, unreachable=True)

    def allowed(self, url: str) -> bool:
        if self.unreachable:
            return False
        return bool(self._rules.can_fetch(url, PRODUCT_TOKEN))

    @property
    def crawl_delay_ms(self) -> int | None:
        """The `Crawl-delay` for our user agent, in ms (capped at 10 s)."""
        delay = self._rules.crawl_delay(PRODUCT_TOKEN)
        if delay is None:
            return None
        return min(int(float(delay) * 1000), MAX_CRAWL_DELAY_MS)

    @property
    def sitemaps(self) -> list[str]:
        return list(self._rules.sitemaps)
