"""The text of a guide file or an answer document, by the documents domain's
own extraction functions (pypdf, python-docx, charset detection, Tesseract)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from backend.documents.content import DOCX, JPEG, PDF, PNG, TIFF
from backend.documents.intelligence.extract import (
    docx_text,
    image_frames,
    ocr_frame,
    pdf_pages,
    plain_text,
    tesseract_available,
)
from backend.kit.http import TEXT

IMAGES = (PNG, JPEG, TIFF)
PAGE_BREAK = "\f"


class Unreadable(Exception):
    """The file has no text this extraction can read."""


def document_text(data: bytes, media: str | None, *, ocr: bool = False) -> str:
    """Pages of a PDF joined by form feeds, a DOCX's paragraphs, plain text,
    or (with `ocr`) an image's frames read by Tesseract."""
    with tempfile.TemporaryDirectory(prefix="dossier-marking-") as folder:
        path = Path(folder) / "content"
        path.write_bytes(data)
        if media == PDF:
            count, page_text = pdf_pages(path)
            return f"\n{PAGE_BREAK}".join(page_text(index) for index in range(count))
        if media == DOCX:
            return docx_text(path)[0]
        if media == TEXT:
            return plain_text(path)
        if media in IMAGES and ocr:
            if not tesseract_available():
                raise Unreadable("Tesseract OCR is not installed: the image's text is unknown")
            frames = image_frames(path)
            return f"\n{PAGE_BREAK}".join(ocr_frame(path, index, "eng") for index in range(frames))
    raise Unreadable("The file is neither a PDF, a DOCX nor text")
