"""sitemap.xml parsing (a `urlset` of pages or a `sitemapindex` of further
sitemaps, optionally gzipped), with entity expansion and network access
switched off in the XML parser."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field

from lxml import etree

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit, uncompressed
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, recover=True, remove_comments=True
)


@dataclass(slots=True)
class Sitemap:
    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def _gunzip(body: bytes) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = decompressor.decompress(body, MAX_SITEMAP_BYTES)
    if decompressor.unconsumed_tail:
        raise ValueError("sitemap larger than 50 MiB uncompressed")
    return data


def parse_sitemap(body: bytes) -> Sitemap:
    """Page and child-sitemap locations listed in `body` (in order); an
    unreadable document yields an empty `Sitemap`."""
    try:
        if body[:2] == b"\x1f\x8b":
            body = _gunzip(body)
        root = etree.fromstring(body, parser=_PARSER)
    except (ValueError, OSError, gzip.BadGzipFile, etree.XMLSyntaxError):
        return Sitemap()
    if root is None:
        return Sitemap()
    result = Sitemap()
    kind = etree.QName(root).localname
    for element in root:
        if not isinstance(element.tag, str):
            continue
        for child in element:
            if isinstance(child.tag, str) and etree.QName(child).localname == "loc":
                location = (child.text or "").strip()
                if location:
                    (result.sitemaps if kind == "sitemapindex" else result.pages).append(location)
    return result
