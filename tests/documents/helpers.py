"""Sample files and request helpers for document tests."""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import httpx

PDF_BYTES = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 20 + b"%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + os.urandom(256)
TEXT_BYTES = b"Quarterly report: the kestrel migration was unusual.\n" * 5


def docx_bytes(text: str = "hello") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml", f"<w:document>{text}</w:document>")
    return buffer.getvalue()


def unique_pdf() -> bytes:
    return PDF_BYTES + os.urandom(16).hex().encode()


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes | None = None,
    *,
    filename: str = "report.pdf",
    content_type: str = "application/pdf",
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    files = {"file": (filename, content if content is not None else unique_pdf(), content_type)}
    return await client.post(
        "/api/v1/documents", headers=headers, files=files, data=data or {}, params=params or {}
    )
