"""The worker in-process: built-in handlers doing real work, retries with
backoff, cancellation, per-tenant caps, outcome bookkeeping."""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from typing import Any

import pytest
from sqlalchemy import text

from backend.documents.intelligence.ocr import installed_languages
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import (
    make_case,
    make_document,
    pdf_with_pages,
    raise_job_cap,
    running_worker,
    wait_for_job,
)


def docx_bytes(*paragraphs: str) -> bytes:
    from docx import Document

    document = Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def png_with_text(line: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1400, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 60), line, fill="black", font=ImageFont.load_default(size=64))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


ENGLISH = (
    "The quick brown fox jumps over the lazy dog while the committee reviews the annual report"
)
FRENCH = (
    "Le rapport annuel du comité est examiné pendant que le renard brun saute par dessus le chien"
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


async def _extract(
    client: Any, app: Any, content: bytes, filename: str, mime: str
) -> tuple[Any, dict[str, Any]]:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    document_id = await make_document(app, tenant.id, content, filename=filename, mime_type=mime)
    answer = await client.post(
        "/api/v1/jobs",
        json={"type": "document.extract_text", "document_id": str(document_id)},
        headers=headers,
    )
    assert answer.status_code == 202
    async with running_worker(app):
        job = await wait_for_job(client, headers, answer.json()["id"])
    with_text = {"job": job, "document_id": document_id, "tenant": tenant}
    return tenant, with_text


async def _document(app: Any, document_id: Any) -> Any:
    from backend.kit.db import system_scope

    with system_scope("tests.documents"):
        async with app.state.db.transaction() as session:
            return (
                await session.execute(
                    text(
                        "SELECT status, page_count, language, extracted_text, "
                        "search_vector @@ plainto_tsquery('english', 'committee') AS found "
                        "FROM documents WHERE id = :id"
                    ),
                    {"id": document_id},
                )
            ).first()


async def test_extract_text_from_pdf_with_progress_per_page(client: Any, app: Any) -> None:
    content = pdf_with_pages(ENGLISH, "Second page about the committee", "Third page")
    _, found = await _extract(client, app, content, "report.pdf", "application/pdf")
    job = found["job"]
    assert job["status"] == "succeeded", job
    assert job["result"]["page_count"] == 3
    assert job["progress"] == 100
    row = await _document(app, found["document_id"])
    assert row.status == "processed"
    assert row.page_count == 3
    assert row.language == "en"
    assert "quick brown fox" in row.extracted_text
    assert row.found is True
    headers = bearer_headers(app, found["tenant"].owner)
    logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()
    assert any("pdf" in line["message"] for line in logs["items"])


async def test_extract_text_from_docx(client: Any, app: Any) -> None:
    _, found = await _extract(
        client, app, docx_bytes(FRENCH, "Deuxième paragraphe"), "note.docx", DOCX
    )
    assert found["job"]["status"] == "succeeded", found["job"]
    row = await _document(app, found["document_id"])
    assert "renard brun" in row.extracted_text
    assert row.language == "fr"


async def test_extract_text_from_latin1_plain_text(client: Any, app: Any) -> None:
    content = ("Résumé du comité : élève, garçon, déjà vu. " + FRENCH).encode("latin-1")
    _, found = await _extract(client, app, content, "notes.txt", "text/plain")
    assert found["job"]["status"] == "succeeded", found["job"]
    row = await _document(app, found["document_id"])
    assert "Résumé du comité" in row.extracted_text


@pytest.mark.skipif(not installed_languages(), reason="Tesseract OCR is not installed")
async def test_extract_text_from_image_by_ocr(client: Any, app: Any) -> None:
    _, found = await _extract(
        client, app, png_with_text("HELLO DOSSIER OCR"), "scan.png", "image/png"
    )
    assert found["job"]["status"] == "succeeded", found["job"]
    row = await _document(app, found["document_id"])
    assert "DOSSIER" in row.extracted_text.upper()


async def test_case_export_zip_with_manifest(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    case_id = await make_case(app, tenant.id, "Export me")
    first = await make_document(app, tenant.id, b"first file", filename="a.txt", case_id=case_id)
    second = await make_document(
        app, tenant.id, b"second file" * 1000, filename="b/../b.txt", case_id=case_id
    )
    await make_document(app, tenant.id, b"not in the case", filename="c.txt")
    answer = await client.post(
        "/api/v1/jobs", json={"type": "case.export", "case_id": str(case_id)}, headers=headers
    )
    async with running_worker(app):
        job = await wait_for_job(client, headers, answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["artifacts"][0]["name"] == "export.zip"
    download = await client.get(f"/api/v1/jobs/{job['id']}/artifacts/export.zip", headers=headers)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert download.headers["etag"].strip('"')
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["case"]["title"] == "Export me"
    assert {d["id"] for d in manifest["documents"]} == {str(first), str(second)}
    for document in manifest["documents"]:
        assert ".." not in document["path"]
        import hashlib

        assert hashlib.sha256(archive.read(document["path"])).hexdigest() == document["sha256"]
    ranged = await client.get(
        f"/api/v1/jobs/{job['id']}/artifacts/export.zip", headers={**headers, "Range": "bytes=0-3"}
    )
    assert ranged.status_code == 206
    assert ranged.content == b"PK\x03\x04"
    missing = await client.get(f"/api/v1/jobs/{job['id']}/artifacts/other.zip", headers=headers)
    assert missing.status_code == 404


async def test_failing_handler_backs_off_then_fails(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    answer = await client.post(
        "/api/v1/jobs",
        json={"type": "test.work", "payload": {"fail": True}, "max_attempts": 3},
        headers=headers,
    )
    async with running_worker(app):
        job = await wait_for_job(client, headers, answer.json()["id"])
    assert job["status"] == "failed"
    assert job["attempts"] == 3
    assert job["error"] == "boom"
    logs = (await client.get(f"/api/v1/jobs/{job['id']}/logs", headers=headers)).json()["items"]
    retries = [line for line in logs if "retrying in" in line["message"]]
    assert len(retries) == 2
    assert [line["attempt"] for line in logs if "started by" in line["message"]] == [1, 2, 3]

    retried = await client.post(f"/api/v1/jobs/{job['id']}/retry", headers=headers)
    assert retried.json()["attempts"] == 0
    async with running_worker(app):
        again = await wait_for_job(client, headers, job["id"], statuses=("failed",))
    assert again["attempts"] == 3
    logs = (
        await client.get(f"/api/v1/jobs/{job['id']}/logs?page_size=100", headers=headers)
    ).json()
    assert len([line for line in logs["items"] if "started by" in line["message"]]) == 6


async def test_cancel_a_running_job(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    answer = await client.post(
        "/api/v1/jobs",
        json={"type": "test.work", "payload": {"sleep": 20, "steps": 100}},
        headers=headers,
    )
    job_id = answer.json()["id"]
    async with running_worker(app):
        await wait_for_job(client, headers, job_id, statuses=("running",))
        cancel = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)
        assert cancel.status_code == 200
        job = await wait_for_job(client, headers, job_id, timeout=10)
    assert job["status"] == "cancelled"
    assert job["progress"] < 100


async def test_tenant_running_cap_and_priority(client: Any, app: Any, owner_engine: Any) -> None:
    capped = await make_tenant(app, "Capped")
    free = await make_tenant(app, "Free")
    await raise_job_cap(owner_engine, capped.id, 1)
    capped_headers = bearer_headers(app, capped.owner)
    free_headers = bearer_headers(app, free.owner)
    slow = [
        (
            await client.post(
                "/api/v1/jobs",
                json={"type": "test.work", "payload": {"sleep": 1}},
                headers=capped_headers,
            )
        ).json()["id"]
        for _ in range(3)
    ]
    urgent = (
        await client.post(
            "/api/v1/jobs", json={"type": "test.noop", "priority": 10}, headers=free_headers
        )
    ).json()["id"]
    async with running_worker(app, concurrency=3):
        done = await wait_for_job(client, free_headers, urgent)
        running = (await client.get("/api/v1/jobs?status=running", headers=capped_headers)).json()[
            "total"
        ]
        assert running <= 1
        for job_id in slow:
            await wait_for_job(client, capped_headers, job_id)
    assert done["status"] == "succeeded"
    async with owner_engine.begin() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT started_at, finished_at FROM jobs WHERE id = ANY(:ids) "
                    "ORDER BY started_at"
                ),
                {"ids": slow},
            )
        ).all()
    for earlier, later in itertools.pairwise(rows):
        assert later.started_at >= earlier.finished_at  # never two at once under a cap of 1
