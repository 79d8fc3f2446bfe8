"""Untrusted files: ZIP containers (DOCX) are checked before a parser sees
them: member count, uncompressed size, compression ratio."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from backend.kit.archive import ArchiveLimits, UnsafeArchive, check_archive
from tests.documents.helpers import upload
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = "text/plain"

MIB = 1024 * 1024


def docx_bomb(inflated_mib: int = 40) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml", b"\0" * (inflated_mib * MIB))
    return buffer.getvalue()


def test_archive_checks_members_sizes_and_ratio(tmp_path: Any) -> None:
    bomb = tmp_path / "bomb.docx"
    bomb.write_bytes(docx_bomb(8))
    assert bomb.stat().st_size < MIB // 10
    with pytest.raises(UnsafeArchive, match="decompression bomb"):
        check_archive(bomb, ArchiveLimits())
    with_many = tmp_path / "many.zip"
    with zipfile.ZipFile(with_many, "w") as archive:
        for index in range(30):
            archive.writestr(f"m{index}.txt", "x")
    check_archive(with_many, ArchiveLimits())
    with pytest.raises(UnsafeArchive, match="members"):
        check_archive(with_many, ArchiveLimits(max_members=20))
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        check_archive(with_many, ArchiveLimits(max_uncompressed_bytes=10))
    junk = tmp_path / "junk.docx"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnsafeArchive, match="not a readable ZIP"):
        check_archive(junk, ArchiveLimits())


async def test_a_docx_bomb_fails_its_document_and_the_worker_goes_on(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    bomb = await upload(client, headers, docx_bomb(), filename="bomb.docx", content_type=DOCX)
    assert bomb.status_code == 201, bomb.text
    fine = await upload(client, headers, b"after the bomb", filename="a.txt", content_type=TEXT)
    async with running_worker(app):
        for document in (bomb.json(), fine.json()):
            jobs = await client.get(
                "/api/v1/jobs", headers=headers, params={"document_id": document["id"]}
            )
            await wait_for_job(client, headers, jobs.json()["items"][-1]["id"])
    failed = await client.get(f"/api/v1/documents/{bomb.json()['id']}", headers=headers)
    assert failed.json()["status"] == "failed"
    jobs = await client.get(
        "/api/v1/jobs", headers=headers, params={"document_id": bomb.json()["id"]}
    )
    assert "decompression bomb" in jobs.json()["items"][-1]["error"]
    processed = await client.get(f"/api/v1/documents/{fine.json()['id']}", headers=headers)
    assert processed.json()["status"] == "processed"
