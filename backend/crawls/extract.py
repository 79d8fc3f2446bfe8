"""Main content and clean Markdown from a fetched page.

Why these libraries: documentation pages nearly always mark their content up
(`<main>`, `<article>`, `role="main"`), so the content is found by those
landmarks first, in `lxml` (fast, maintained, tolerant HTML parser), and only
pages without them go through `readability-lxml`'s scoring (maintained, lxml
based, no network, deterministic). Trafilatura was passed over: its Markdown
drops the language of code blocks and flattens some tables, which are the
parts documentation readers care most about. The Markdown itself comes from
`markdownify` (maintained, configurable per element): ATX headings, nested
lists, pipe tables, links, images' alt text and fenced code with the language
read from the usual `language-*`/`lang-*`/`highlight-*` classes.

Links for the frontier are read from the whole page (navigation included:
that is how a documentation site links its pages); the Markdown holds only
the main content, with navigation, header, footer, asides, forms, scripts,
styles and cookie banners dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import lxml.html
from lxml import etree
from markdownify import MarkdownConverter
from readability import Document

from backend.crawls.urls import normalise

_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "canvas",
    "form",
    "button",
    "input",
    "select",
    "textarea",
    "nav",
    "aside",
    "dialog",
)
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog"}
_BOILERPLATE = re.compile(r"cookie|consent|gdpr|skip-?link|breadcrumb|sidebar|toc\b", re.I)
_LANGUAGE = re.compile(r"(?:^|\s)(?:language|lang|highlight-source|highlight)-([\w+#.-]+)")
_MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_WORD = re.compile(r"\w+")
_BLANKS = re.compile(r"\n{3,}")


@dataclass(slots=True)
class Extracted:
    title: str
    markdown: str
    links: list[str] = field(default_factory=list)

    @property
    def words(self) -> int:
        return len(_WORD.findall(self.markdown))


def _code_language(pre: etree._Element) -> str:
    for element in (pre, *pre.iterchildren("code")):
        language = element.get("data-lang") or element.get("data-language")
        if language:
            return str(language).strip().lower()
        match = _LANGUAGE.search(element.get("class") or "")
        if match:
            return match.group(1).lower()
    parent = pre.getparent()
    if parent is not None:
        match = _LANGUAGE.search(parent.get("class") or "")
        if match:
            return match.group(1).lower()
    return ""


_CONVERTER = MarkdownConverter(
    heading_style="atx",
    bullets="-",
    escape_underscores=False,
    escape_asterisks=False,
    code_language_callback=lambda el: el.get("data-md-lang") or None,
    strip_document="strip",
    bs4_options="lxml",
)


def _decode(body: bytes, charset: str | None) -> str:
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return body.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    return body.decode("utf-8", errors="replace")


def _drop(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is not None:
        element.drop_tree()


def _is_boilerplate(element: etree._Element) -> bool:
    if element.get("role", "").lower() in _DROP_ROLES:
        return True
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    marker = f"{element.get('id', '')} {element.get('class', '')}"
    return bool(marker.strip()) and bool(_BOILERPLATE.search(marker))


def _clean(root: etree._Element) -> None:
    for element in list(root.iter(*_DROP_TAGS)):
        _drop(element)
    for element in list(root.iter("header", "footer")):
        # An article's own header (its title) is content; the page's is not.
        if not any(a.tag == "article" for a in element.iterancestors()):
            _drop(element)
    for element in list(root.iter(etree.Element)):
        if element.tag not in ("html", "body", "main", "article") and _is_boilerplate(element):
            _drop(element)
    for element in root.iter(etree.Comment):
        _drop(element)


def _content_root(document: lxml.html.HtmlElement) -> etree._Element:
    for path in ("//main", "//*[@role='main']"):
        found = document.xpath(path)
        if found:
            return found[0]
    articles = document.xpath("//article")
    if len(articles) == 1:
        return articles[0]
    html = lxml.html.tostring(document, encoding="unicode")
    summary = Document(html).summary(html_partial=True)
    return lxml.html.fragment_fromstring(summary, create_parent="div")


def _prepare_for_markdown(root: etree._Element) -> None:
    for pre in root.iter("pre"):
        language = _code_language(pre)
        if language:
            pre.set("data-md-lang", language)
    for cell in root.iter("td", "th"):
        for node in cell.iter():
            if node.text and "|" in node.text:
                node.text = node.text.replace("|", "\\|")
            if node is not cell and node.tail and "|" in node.tail:
                node.tail = node.tail.replace("|", "\\|")


def extract_html(body: bytes, url: str, charset: str | None = None) -> Extracted:
    text = _decode(body, charset)
    if not text.strip():
        return Extracted(title="", markdown="")
    try:
        document = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return Extracted(title="", markdown="")
    base = url
    base_href = document.xpath("//base/@href")
    if base_href:
        base = normalise(str(base_href[0]), url) or url
    links: dict[str, None] = {}
    for href in document.xpath("//a/@href"):
        link = normalise(str(href), base)
        if link is not None:
            links[link] = None
    title_text = document.findtext(".//title") or ""
    title = " ".join(title_text.split())
    document.make_links_absolute(base, resolve_base_href=False, handle_failures="ignore")
    _clean(document)
    root = _content_root(document)
    if not title:
        heading = root.find(".//h1")
        title = " ".join(heading.text_content().split()) if heading is not None else ""
    _prepare_for_markdown(root)
    html = lxml.html.tostring(root, encoding="unicode")
    markdown = _BLANKS.sub("\n\n", _CONVERTER.convert(html)).strip()
    return Extracted(title=title[:500], markdown=markdown, links=list(links))


def extract_text(body: bytes, url: str, charset: str | None, *, markdown: bool) -> Extracted:
    text = _decode(body, charset).replace("\r\n", "\n").strip()
    title = ""
    for line in text.splitlines():
        line = line.strip()
        if line:
            title = line.lstrip("#").strip() if markdown else line
            break
    links: dict[str, None] = {}
    if markdown:
        for match in _MD_LINK.finditer(text):
            link = normalise(match.group(1), url)
            if link is not None:
                links[link] = None
    return Extracted(title=title[:500], markdown=text, links=list(links))


def extract(body: bytes, url: str, content_type: str | None, charset: str | None) -> Extracted:
    """Title, Markdown and outgoing links of a kept page."""
    if content_type in ("text/html", "application/xhtml+xml"):
        return extract_html(body, url, charset)
    return extract_text(body, url, charset, markdown=content_type == "text/markdown")
