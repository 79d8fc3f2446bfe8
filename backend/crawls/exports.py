"""The four export formats, built from stored pages (never a refetch).

* `markdown` — `site.md`: the crawl's title, a table of contents, then each
  page as a section under an `<a id>` anchor; its headings are moved down two
  levels (a page's `#` becomes `###`) and links between crawled pages point
  at the sections' anchors.
* `html` — `site.html`: the same document rendered to one standalone HTML
  page (markdown-it-py, CommonMark + tables; raw HTML in pages is escaped).
* `json` — `pages.json`: `[{url, title, depth, markdown, links}]`.
* `zip` — `site.zip`: one `.md` per page at `<host>/<path>.md` (a path ending
  in `/` gives `index.md`, a query adds a short hash), links between pages
  rewritten to relative paths, plus `index.md` listing every page.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt

from backend.crawls.urls import normalise


class ExportFormat(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"
    JSON = "json"
    ZIP = "zip"


@dataclass(frozen=True, slots=True)
class ExportSpec:
    name: str
    content_type: str


SPECS = {
    ExportFormat.MARKDOWN: ExportSpec("site.md", "text/markdown; charset=utf-8"),
    ExportFormat.HTML: ExportSpec("site.html", "text/html; charset=utf-8"),
    ExportFormat.JSON: ExportSpec("pages.json", "application/json"),
    ExportFormat.ZIP: ExportSpec("site.zip", "application/zip"),
}


@dataclass(frozen=True, slots=True)
class ExportPage:
    url: str
    title: str
    depth: int
    markdown: str
    links: Sequence[str] = field(default_factory=tuple)


_LINK = re.compile(r"(\]\(\s*<?)([^)\s>]+)(>?(?:\s+\"[^\"]*\")?\s*\))")
_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})(\s)")
_SLUG = re.compile(r"[^a-z0-9]+")


def _rewrite_links(markdown: str, target: Callable[[str, str], str | None]) -> str:
    """Replace `](url#fragment)` link targets for which `target(url, fragment)`
    answers, outside fenced code."""
    out: list[str] = []
    fenced = False
    for line in markdown.split("\n"):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced and "](" in line:

            def replace(match: re.Match[str]) -> str:
                url, _, fragment = match.group(2).partition("#")
                key = normalise(url) if url else None
                new = target(key, fragment) if key else None
                return match.group(0) if new is None else f"{match.group(1)}{new}{match.group(3)}"

            line = _LINK.sub(replace, line)
        out.append(line)
    return "\n".join(out)


def _demote(markdown: str, levels: int) -> str:
    out: list[str] = []
    fenced = False
    for line in markdown.split("\n"):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            match = _HEADING.match(line)
            if match:
                hashes = "#" * min(6, len(match.group(1)) + levels)
                line = hashes + line[len(match.group(1)) :]
        out.append(line)
    return "\n".join(out)


def _title(page: ExportPage) -> str:
    return page.title or page.url


def anchors(pages: Sequence[ExportPage]) -> dict[str, str]:
    """A unique anchor per page URL, from its path."""
    used: set[str] = set()
    result: dict[str, str] = {}
    for page in pages:
        path = urlsplit(page.url).path.strip("/") or "home"
        base = "page-" + (_SLUG.sub("-", unquote(path).lower()).strip("-") or "home")
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        used.add(anchor)
        result[page.url] = anchor
    return result


def _single_document(title: str, pages: Sequence[ExportPage]) -> tuple[str, list[str]]:
    ids = anchors(pages)

    def to_anchor(url: str, fragment: str) -> str | None:
        return f"#{ids[url]}" if url in ids else None

    toc = [f"- [{_escape_text(_title(p))}](#{ids[p.url]})" for p in pages]
    sections = []
    for page in pages:
        body = _demote(_rewrite_links(page.markdown, to_anchor), 2)
        sections.append(
            f'<a id="{ids[page.url]}"></a>\n\n## {_escape_text(_title(page))}\n\n'
            f"Source: <{page.url}>\n\n{body}\n"
        )
    header = f"# {_escape_text(title)}\n\n## Contents\n\n" + "\n".join(toc) + "\n"
    return header, sections


def _escape_text(text: str) -> str:
    return re.sub(r"([\[\]\\`*_<>])", r"\\\1", " ".join(text.split()))


def build_markdown(title: str, pages: Sequence[ExportPage]) -> bytes:
    header, sections = _single_document(title, pages)
    return ("\n".join([header, *sections])).encode()


_RENDERER = MarkdownIt("commonmark", {"html": False}).enable("table")
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}pre{background:#f5f5f5;padding:.75rem;overflow:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
    "section{border-top:1px solid #ddd;margin-top:2rem}"
)


def build_html(title: str, pages: Sequence[ExportPage]) -> bytes:
    ids = anchors(pages)

    def to_anchor(url: str, fragment: str) -> str | None:
        return f"#{ids[url]}" if url in ids else None

    toc = "".join(f'<li><a href="#{ids[p.url]}">{html.escape(_title(p))}</a></li>' for p in pages)
    sections = []
    for page in pages:
        body = _RENDERER.render(_demote(_rewrite_links(page.markdown, to_anchor), 2))
        sections.append(
            f'<section id="{ids[page.url]}"><h2>{html.escape(_title(page))}</h2>'
            f'<p class="source">Source: <a href="{html.escape(page.url)}">'
            f"{html.escape(page.url)}</a></p>\n{body}</section>\n"
        )
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><nav><h2>Contents</h2><ul>{toc}</ul></nav>\n"
        + "".join(sections)
        + "</body></html>\n"
    )
    return document.encode()


def build_json(pages: Sequence[ExportPage]) -> bytes:
    return json.dumps(
        [
            {
                "url": p.url,
                "title": p.title,
                "depth": p.depth,
                "markdown": p.markdown,
                "links": list(p.links),
            }
            for p in pages
        ],
        ensure_ascii=False,
        indent=1,
    ).encode()


_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._-]+")


def zip_paths(pages: Sequence[ExportPage]) -> dict[str, str]:
    """The file of each page in `site.zip`, mirroring its URL's path."""
    used = {"index.md"}
    result: dict[str, str] = {}
    for page in pages:
        parts = urlsplit(page.url)
        host = _SAFE_SEGMENT.sub("_", parts.netloc.replace(":", "_")) or "site"
        segments = [
            _SAFE_SEGMENT.sub("_", unquote(s)).strip("._") or "_"
            for s in parts.path.split("/")
            if s
        ]
        if not segments or parts.path.endswith("/"):
            segments.append("index")
        name = segments[-1]
        for extension in (".html", ".htm", ".md", ".markdown", ".txt"):
            if name.lower().endswith(extension) and len(name) > len(extension):
                name = name[: -len(extension)]
                break
        if parts.query:
            name += "__" + hashlib.sha256(parts.query.encode()).hexdigest()[:8]
        path = posixpath.join(host, *segments[:-1], name)
        candidate, n = f"{path}.md", 2
        while candidate in used:
            candidate, n = f"{path}-{n}.md", n + 1
        used.add(candidate)
        result[page.url] = candidate
    return result


def build_zip(title: str, pages: Sequence[ExportPage]) -> bytes:
    paths = zip_paths(pages)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        index = [f"# {_escape_text(title)}", ""]
        for page in pages:
            index.append(f"- [{_escape_text(_title(page))}]({paths[page.url]})")
        archive.writestr("index.md", "\n".join(index) + "\n")
        for page in pages:
            here = posixpath.dirname(paths[page.url])

            def relative(url: str, fragment: str, here: str = here) -> str | None:
                if url not in paths:
                    return None
                rel = posixpath.relpath(paths[url], here or ".")
                return rel + (f"#{fragment}" if fragment else "")

            body = _rewrite_links(page.markdown, relative)
            archive.writestr(paths[page.url], f"<!-- {page.url} -->\n\n{body}\n")
    return buffer.getvalue()


def build_export(fmt: ExportFormat, title: str, pages: Sequence[ExportPage]) -> bytes:
    """The export file's bytes (CPU-bound: run it off the event loop)."""
    if fmt is ExportFormat.MARKDOWN:
        return build_markdown(title, pages)
    if fmt is ExportFormat.HTML:
        return build_html(title, pages)
    if fmt is ExportFormat.JSON:
        return build_json(pages)
    return build_zip(title, pages)
