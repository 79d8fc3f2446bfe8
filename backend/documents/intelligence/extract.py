"""Text extraction, page by page. PDF pages are read from their text layer;
with `ocr="auto"` a page whose layer holds fewer than `min_page_chars`
characters is rendered at 300 dpi and OCR'd (`always`: every page;
`never`: none). Images (PNG, JPEG, multi-page TIFF) are OCR'd frame by
frame; DOCX and plain text are one page of text.

`PageReader.page(i)` is one unit of work (the job reports progress and
honours cancel between pages); `extract_document` runs them all, for
callers that need a document's text now.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from backend.documents.intelligence import language as languages_
from backend.documents.intelligence.ocr import OCR_DPI, installed_languages, ocr_image
from backend.documents.intelligence.pages import (
    UnreadableDocument,
    image_dpi,
    image_frame,
    image_frame_count,
    kind_of,
    pdf_page_count,
    pdf_text_layer,
    render_pdf_page,
)

OcrMode = Literal["auto", "always", "never"]
MAX_TEXT_CHARS = 5_000_000
DEFAULT_MIN_PAGE_CHARS = 20

_PAGES = re.compile(rb"<Pages>(\d+)</Pages>")


@dataclass(slots=True)
class PageResult:
    number: int
    method: Literal["text", "ocr"]
    text: str
    characters: int
    confidence: float | None
    language: str | None
    width: float | None
    height: float | None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class DocumentText:
    kind: str
    pages: list[PageResult]
    page_count: int | None
    text: str
    language: str | None
    confidence: float | None

    @property
    def ocr_pages(self) -> int:
        return sum(1 for page in self.pages if page.method == "ocr")


def docx_text(path: Path) -> tuple[str, int | None]:
    """Paragraph and table text of a DOCX (python-docx), and the page count Word saved."""
    from docx import Document as DocxDocument

    try:
        document = DocxDocument(str(path))
    except Exception as error:
        raise UnreadableDocument(f"The DOCX cannot be read: {error}") from None
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    pages = None
    with zipfile.ZipFile(path) as archive:
        if "docProps/app.xml" in archive.namelist():
            match = _PAGES.search(archive.read("docProps/app.xml"))
            pages = int(match.group(1)) if match else None
    return "\n".join(parts), pages


def plain_text(path: Path) -> str:
    from charset_normalizer import from_path

    best = from_path(path).best()
    if best is None:
        raise UnreadableDocument("The file is not text in any known encoding")
    return str(best)


class PageReader:
    """One document, read one page at a time."""

    def __init__(
        self,
        path: Path,
        mime_type: str,
        *,
        ocr: OcrMode = "auto",
        languages: list[str] | None = None,
        min_page_chars: int = DEFAULT_MIN_PAGE_CHARS,
    ) -> None:
        self.path = path
        self.mime_type = mime_type
        self.ocr = ocr
        self.languages = list(languages or ["eng", "deu"])
        self.min_page_chars = min_page_chars
        self.kind = kind_of(path, mime_type)
        self.saved_page_count: int | None = None
        self._single: str | None = None

    def count(self) -> int:
        """Pages to read (opens the file: run off the event loop)."""
        if self.kind == "pdf":
            return pdf_page_count(self.path)
        if self.kind == "image":
            return image_frame_count(self.path)
        if self.kind == "docx":
            if self._single is None:
                self._single, self.saved_page_count = docx_text(self.path)
        else:
            self._single = plain_text(self.path)
            self.saved_page_count = 1
        return 1

    def use_docx_text(self, text: str, saved_page_count: int | None) -> None:
        """The DOCX's text, read by a sandboxed `docx_text` (see the service)."""
        self._single, self.saved_page_count = text, saved_page_count

    def needs_ocr(self) -> bool:
        return self.ocr != "never" and self.kind in ("pdf", "image")

    def page(self, index: int) -> PageResult:
        if self.kind == "pdf":
            return self._pdf_page(index)
        if self.kind == "image":
            return self._image_page(index)
        text = (self._single or "").replace("\x00", "")
        return self._result(index, "text", text, 1.0, None, None)

    def _result(
        self,
        index: int,
        method: Literal["text", "ocr"],
        text: str,
        confidence: float | None,
        width: float | None,
        height: float | None,
    ) -> PageResult:
        text = text[:MAX_TEXT_CHARS]
        characters = len(text)
        if not characters:
            confidence = None if method == "text" else confidence
        return PageResult(
            number=index + 1,
            method=method,
            text=text,
            characters=characters,
            confidence=confidence,
            language=languages_.detect(text, self.languages),
            width=width,
            height=height,
        )

    def _pdf_page(self, index: int) -> PageResult:
        text, width, height = pdf_text_layer(self.path, index)
        visible = len(re.sub(r"\s", "", text))
        if self.ocr == "always" or (self.ocr == "auto" and visible < self.min_page_chars):
            image = render_pdf_page(self.path, index, OCR_DPI)
            page = ocr_image(image, self.languages, OCR_DPI)
            return self._result(index, "ocr", page.text, page.confidence, width, height)
        return self._result(index, "text", text, 1.0, width, height)

    def _image_page(self, index: int) -> PageResult:
        frame = image_frame(self.path, index)
        width, height = frame.size
        if self.ocr == "never":
            return self._result(index, "text", "", None, width, height)
        page = ocr_image(frame, self.languages, image_dpi(self.path) or OCR_DPI)
        return self._result(index, "ocr", page.text, page.confidence, width, height)

    def finish(self, pages: list[PageResult]) -> DocumentText:
        return summarise(self.kind, pages, self.saved_page_count, self.languages)


def summarise(
    kind: str, pages: list[PageResult], saved_page_count: int | None, languages: list[str]
) -> DocumentText:
    """The document's text (pages separated by a form feed), language and
    character-weighted confidence."""
    text = "\f".join(page.text for page in pages)[:MAX_TEXT_CHARS]
    language = languages_.document_language([(page.language, page.characters) for page in pages])
    if language is None:
        language = languages_.detect(text, languages)
    weighted = sum((page.confidence or 0.0) * page.characters for page in pages)
    characters = sum(page.characters for page in pages)
    confidence = round(weighted / characters, 4) if characters else None
    page_count = saved_page_count if kind == "docx" and saved_page_count else len(pages)
    return DocumentText(
        kind=kind,
        pages=pages,
        page_count=page_count,
        text=text,
        language=language,
        confidence=confidence,
    )


def extract_document(
    path: Path,
    mime_type: str,
    *,
    ocr: OcrMode = "auto",
    languages: list[str] | None = None,
    min_page_chars: int = DEFAULT_MIN_PAGE_CHARS,
) -> DocumentText:
    """All pages at once (blocking: call off the event loop)."""
    reader = PageReader(
        path, mime_type, ocr=ocr, languages=languages, min_page_chars=min_page_chars
    )
    count = reader.count()
    return reader.finish([reader.page(index) for index in range(count)])


# ------------------------------------------------- single-purpose readers
# For callers that read a file's text outside a document (marking's guide
# import and answer pages): the same parsers as the pages above.


def pdf_pages(path: Path) -> tuple[int, Callable[[int], str]]:
    """A PDF's page count, and a function reading one page's text layer."""
    return pdf_page_count(path), lambda index: pdf_text_layer(path, index)[0]


def image_frames(path: Path) -> int:
    return image_frame_count(path)


def ocr_frame(path: Path, index: int, language: str) -> str:
    """One image frame read by Tesseract (`language`: `eng`, `eng+deu`)."""
    return ocr_image(image_frame(path, index), language.split("+")).text


def tesseract_available() -> bool:
    return bool(installed_languages())
