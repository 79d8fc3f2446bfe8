"""`document.extract_text`: the text of a PDF, DOCX, plain-text file or image
(Tesseract OCR), its page count and language, stored on the document, which
becomes searchable and moves to `processed` (or `failed`)."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from backend.documents.service import document_service
from backend.jobs.context import JobContext
from backend.jobs.types import PermanentJobError, job_type
from backend.kit.events import emit

MAX_TEXT_CHARS = 5_000_000
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ocr_language": {
            "type": "string",
            "pattern": "^[a-z_]{3,8}(\\+[a-z_]{3,8})*$",
            "description": "Tesseract language(s) for images, e.g. `eng` or `eng+fra`",
        }
    },
    "additionalProperties": False,
}


def sniff_kind(head: bytes, mime_type: str) -> str:
    """`pdf`, `docx`, `image` or `text`, from the content first, then the type."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") and (mime_type == DOCX_MIME or b"word/" in head):
        return "docx"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return "image"
    if mime_type == DOCX_MIME:
        return "docx"
    if mime_type == "application/pdf":
        return "pdf"
    if mime_type.startswith("image/"):
        return "image"
    return "text"


def pdf_pages(path: Path) -> tuple[int, Callable[[int], str]]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), lambda index: reader.pages[index].extract_text() or ""


_W_TEXT = re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>|<w:(p|br|tab)\b[^>]*/?>")
_PAGES = re.compile(rb"<Pages>(\d+)</Pages>")


def docx_text(path: Path) -> tuple[str, int | None]:
    """Paragraph text of a DOCX (python-docx), and the page count Word saved."""
    from docx import Document as DocxDocument

    document = DocxDocument(str(path))
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
        raise PermanentJobError("The file is not text in any known encoding")
    return str(best)


def image_frames(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return int(getattr(image, "n_frames", 1))


def ocr_frame(path: Path, index: int, language: str) -> str:
    import pytesseract
    from PIL import Image

    with Image.open(path) as image:
        image.seek(index)
        frame = image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
    return str(pytesseract.image_to_string(frame, lang=language))


def detect_language(sample: str) -> str | None:
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # deterministic answers
    sample = sample.strip()[:5000]
    if len(sample) < 20:
        return None
    try:
        return str(detect(sample))
    except LangDetectException:
        return None


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


async def _set_status(ctx: JobContext, status: str) -> None:
    async with ctx.transaction() as session:
        await session.execute(
            text("UPDATE documents SET status = :status, updated_at = now() WHERE id = :id"),
            {"status": status, "id": ctx.job.document_id},
        )
        assert ctx.job.document_id is not None  # the type requires a document
        await document_service.announce_change(session, ctx.job.document_id, ["status"])


@job_type(
    "document.extract_text",
    "Extract the text of a document (PDF, DOCX, plain text; images through Tesseract OCR), "
    "with its page count and language, and make it searchable.",
    schema=SCHEMA,
    requires=("document",),
)
async def extract_text(ctx: JobContext) -> dict[str, Any]:
    try:
        return await _extract(ctx)
    except PermanentJobError:
        await _set_status(ctx, "failed")
        raise
    except Exception:
        if ctx.job.attempt >= ctx.job.max_attempts:
            await _set_status(ctx, "failed")
        raise


async def _extract(ctx: JobContext) -> dict[str, Any]:
    async with ctx.transaction() as session:
        row = (
            await session.execute(
                text(
                    "SELECT storage_key, mime_type FROM documents "
                    "WHERE id = :id AND deleted_at IS NULL"
                ),
                {"id": ctx.job.document_id},
            )
        ).first()
    if row is None:
        raise PermanentJobError("The document no longer exists")
    await _set_status(ctx, "processing")
    await ctx.progress(5, "downloading")
    with tempfile.TemporaryDirectory(prefix="dossier-extract-") as folder:
        path = Path(folder) / "content"
        with path.open("wb") as handle:
            async for chunk in ctx.storage.open_range(row.storage_key):
                handle.write(chunk)
        with path.open("rb") as handle:
            head = handle.read(4096)
        kind = sniff_kind(head, row.mime_type)
        await ctx.log(f"Extracting text from a {kind} file")
        page_count: int | None
        if kind == "pdf":
            count, page_text = await ctx.run_blocking(pdf_pages, path)
            pages = []
            for index in range(count):
                pages.append(await ctx.run_blocking(page_text, index))
                await ctx.progress(
                    10 + 85 * (index + 1) / max(count, 1), f"page {index + 1} of {count}"
                )
            content, page_count = "\n\f".join(pages), count
        elif kind == "docx":
            content, page_count = await ctx.run_blocking(docx_text, path)
            await ctx.progress(90, "document read")
        elif kind == "image":
            if not tesseract_available():
                raise PermanentJobError(
                    "Tesseract OCR is not installed on this worker: images cannot be read"
                )
            ocr_language = str(ctx.payload.get("ocr_language", "eng"))
            count = await ctx.run_blocking(image_frames, path)
            pages = []
            for index in range(count):
                pages.append(await ctx.run_blocking(ocr_frame, path, index, ocr_language))
                await ctx.progress(
                    10 + 85 * (index + 1) / count, f"OCR page {index + 1} of {count}"
                )
            content, page_count = "\n\f".join(pages), count
        else:
            content = await ctx.run_blocking(plain_text, path)
            page_count = 1
            await ctx.progress(90, "text decoded")
    content = content.replace("\x00", "")[:MAX_TEXT_CHARS]
    language: str | None = await ctx.run_blocking(detect_language, content)
    async with ctx.transaction() as session:
        updated = (
            await session.execute(
                text(
                    "UPDATE documents SET extracted_text = :text, page_count = :pages, "
                    "language = :language, status = 'processed', version = version + 1, "
                    "updated_at = now() WHERE id = :id AND deleted_at IS NULL RETURNING id"
                ),
                {
                    "text": content,
                    "pages": page_count,
                    "language": language,
                    "id": ctx.job.document_id,
                },
            )
        ).first()
        if updated is None:
            raise PermanentJobError("The document was deleted during extraction")
        data = {
            "document_id": str(ctx.job.document_id),
            "status": "processed",
            "page_count": page_count,
            "language": language,
        }
        emit(session, "document.processed", data)
        await document_service.announce_change(
            session, updated.id, ["status", "page_count", "language"]
        )
    await ctx.log(
        f"Extracted {len(content)} characters from {page_count} page(s); language {language}"
    )
    return {
        "page_count": page_count,
        "language": language,
        "characters": len(content),
        "kind": kind,
    }
