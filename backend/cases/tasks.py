"""`case.export`: a ZIP of a case's live documents plus `manifest.json` (the
case's fields and each document with its sha256), stored as the job's
artifact `export.zip`. The archive is streamed into storage as it is built,
so memory does not grow with the size of the case."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from backend.jobs.context import JobContext
from backend.jobs.types import PermanentJobError, job_type

ARTIFACT_NAME = "export.zip"
CASE_FIELDS = (
    "id",
    "reference",
    "title",
    "description",
    "status",
    "priority",
    "assignee_id",
    "tags",
    "due_at",
    "metadata",
    "closed_at",
    "created_at",
    "updated_at",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class _Sink:
    """A write-only, non-seekable file for `zipfile` whose bytes are drained
    as the archive grows (zipfile then writes data descriptors)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def seekable(self) -> bool:
        return False

    @property
    def pending(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def drain(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (list, dict, str, int, float, bool)) or value is None:
        return value
    return str(value)


def _entry_name(document_id: Any, filename: str) -> str:
    cleaned = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", filename)).strip(" .") or "file"
    return f"documents/{document_id}-{cleaned[:150]}"


@job_type(
    "case.export",
    "Export a case: a ZIP of its documents and a JSON manifest, as the job's artifact "
    f"`{ARTIFACT_NAME}`.",
    schema={"type": "object", "properties": {}, "additionalProperties": False},
    requires=("case",),
)
async def export_case(ctx: JobContext) -> dict[str, Any]:
    async with ctx.transaction() as session:
        case = (
            (
                await session.execute(
                    text("SELECT * FROM cases WHERE id = :id AND deleted_at IS NULL"),
                    {"id": ctx.job.case_id},
                )
            )
            .mappings()
            .first()
        )
        if case is None:
            raise PermanentJobError("The case no longer exists")
        documents = (
            await session.execute(
                text(
                    "SELECT id, title, filename, mime_type, size, sha256, storage_key, created_at "
                    "FROM documents WHERE case_id = :id AND deleted_at IS NULL "
                    "ORDER BY created_at, id"
                ),
                {"id": ctx.job.case_id},
            )
        ).all()
    case_fields = {name: _jsonable(case.get(name)) for name in CASE_FIELDS if name in case}
    await ctx.log(
        f"Exporting case {case_fields.get('reference')} with {len(documents)} document(s)"
    )
    await ctx.progress(1, "exporting")
    manifest_documents: list[dict[str, Any]] = []

    async def archive() -> AsyncIterator[bytes]:
        sink = _Sink()
        writable: Any = sink
        with zipfile.ZipFile(
            writable, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6
        ) as zf:
            for index, document in enumerate(documents):
                name = _entry_name(document.id, document.filename)
                digest = hashlib.sha256()
                size = 0
                with zf.open(name, "w", force_zip64=True) as entry:
                    async for chunk in ctx.storage.open_range(document.storage_key):
                        digest.update(chunk)
                        size += len(chunk)
                        entry.write(chunk)
                        if sink.pending >= 1 << 20:
                            yield sink.drain()
                if digest.hexdigest() != document.sha256:
                    raise PermanentJobError(f"Stored content of document {document.id} is corrupt")
                manifest_documents.append(
                    {
                        "id": str(document.id),
                        "title": document.title,
                        "filename": document.filename,
                        "path": name,
                        "mime_type": document.mime_type,
                        "size": size,
                        "sha256": digest.hexdigest(),
                        "created_at": _jsonable(document.created_at),
                    }
                )
                if sink.pending:
                    yield sink.drain()
                await ctx.progress(
                    1 + 97 * (index + 1) / len(documents),
                    f"document {index + 1} of {len(documents)}",
                )
            manifest = {
                "case": case_fields,
                "documents": manifest_documents,
                "exported_at": datetime.now(UTC).isoformat(),
                "job_id": str(ctx.job.id),
            }
            zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        yield sink.drain()

    artifact = await ctx.store_artifact(ARTIFACT_NAME, archive(), content_type="application/zip")
    await ctx.log(f"Export stored: {artifact['size']} bytes")
    return {
        "artifact": ARTIFACT_NAME,
        "size": artifact["size"],
        "documents": len(manifest_documents),
    }
