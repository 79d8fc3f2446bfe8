"""Reading a document page by page: the kind of file, its page count, each
page's text layer and size, and page images for OCR and previews.

PDFium is not thread-safe, and the worker and the API call this from
threads: every PDFium call holds `PDFIUM_LOCK` (OCR, the slow part, does not).
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
from PIL import Image, ImageOps

from backend.documents.content import DOCX, PDF

PDFIUM_LOCK = threading.RLock()
# Images are refused above this many pixels (decompression bombs).
MAX_IMAGE_PIXELS = 120_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
MAX_RENDER_PIXELS = 60_000_000


class UnreadableDocument(Exception):
    """The file cannot be parsed as what it claims to be."""


def sniff_kind(head: bytes, mime_type: str) -> str:
    """`pdf`, `docx`, `image` or `text`, from the content first, then the type."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") and (mime_type == DOCX or b"word/" in head):
        return "docx"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return "image"
    if mime_type == DOCX:
        return "docx"
    if mime_type == PDF:
        return "pdf"
    if mime_type.startswith("image/"):
        return "image"
    return "text"


def kind_of(path: Path, mime_type: str) -> str:
    with path.open("rb") as handle:
        return sniff_kind(handle.read(4096), mime_type)


@contextmanager
def open_pdf(path: Path) -> Iterator[pdfium.PdfDocument]:
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as error:
            raise UnreadableDocument(f"The PDF cannot be read: {error}") from None
        try:
            yield document
        finally:
            document.close()


def pdf_page_count(path: Path) -> int:
    with open_pdf(path) as document:
        return len(document)


def pdf_text_layer(path: Path, index: int) -> tuple[str, float, float]:
    """A PDF page's text layer as PDFium reads it (line ends normalised),
    and the page's size in points."""
    with open_pdf(path) as document:
        page = document[index]
        try:
            width, height = page.get_size()
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\ufffe", "")
    return text.strip(), round(width, 2), round(height, 2)


def render_pdf_page(path: Path, index: int, dpi: float = 300, *, grey: bool = True) -> Image.Image:
    with open_pdf(path) as document:
        page = document[index]
        try:
            width, height = page.get_size()
            scale = dpi / 72
            if width * height * scale * scale > MAX_RENDER_PIXELS:
                scale = (MAX_RENDER_PIXELS / (width * height)) ** 0.5
            bitmap = page.render(scale=scale, grayscale=grey)
            try:
                image: Image.Image = bitmap.to_pil().copy()
            finally:
                bitmap.close()
        finally:
            page.close()
    return image


def image_frame_count(path: Path) -> int:
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, Image.DecompressionBombError) as error:
        raise UnreadableDocument(f"The image cannot be read: {error}") from None


def image_frame(path: Path, index: int) -> Image.Image:
    """One frame of an image file, upright (EXIF orientation applied)."""
    try:
        with Image.open(path) as image:
            image.seek(index)
            frame = ImageOps.exif_transpose(image.copy())
    except (OSError, EOFError, Image.DecompressionBombError) as error:
        raise UnreadableDocument(f"The image cannot be read: {error}") from None
    if frame.mode not in ("RGB", "L"):
        frame = frame.convert("RGB")
    return frame


def image_dpi(path: Path) -> int | None:
    with Image.open(path) as image:
        dpi: Any = image.info.get("dpi")
    if dpi and dpi[0] and 70 <= float(dpi[0]) <= 1200:
        return round(float(dpi[0]))
    return None


def is_docx(path: Path) -> bool:
    return zipfile.is_zipfile(path)
