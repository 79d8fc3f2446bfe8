"""Bulk uploads keep what they answered: when one file fails after it was
staged (duplicate, quota, type, empty), only that file's blob is discarded;
every file answered 201 can be downloaded with its content."""

from __future__ import annotations

import os
from typing import Any

import httpx
from sqlalchemy import text

from backend.kit.db import system_scope
from tests.documents.helpers import unique_pdf, upload
from tests.factories import bearer_headers, make_tenant

QUOTA = 200_000


def _failing(kind: str, duplicate: bytes) -> tuple[str, bytes, str]:
    if kind == "duplicate":
        return ("dup.pdf", duplicate, "application/pdf")
    if kind == "quota":
        return ("huge.pdf", b"%PDF-1.7\n" + os.urandom(QUOTA), "application/pdf")
    if kind == "type":
        return ("prog.exe", b"MZ\x90\x00" * 10, "application/octet-stream")
    return ("empty.pdf", b"", "application/pdf")


async def test_a_failing_file_in_any_position_leaves_the_others_whole(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            await session.execute(
                text("UPDATE tenants SET limits = CAST(:limits AS jsonb) WHERE id = :id"),
                {"limits": f'{{"storage_bytes": {QUOTA}}}', "id": tenant.id},
            )
    duplicate = unique_pdf()
    assert (await upload(client, headers, duplicate)).status_code == 201
    for kind in ("duplicate", "quota", "type", "empty"):
        for position in (0, 1, 2):  # first, middle, last
            files = [
                ("a.pdf", unique_pdf(), "application/pdf"),
                ("b.pdf", unique_pdf(), "application/pdf"),
            ]
            files.insert(position, _failing(kind, duplicate))
            answer = await client.post(
                "/api/v1/documents/bulk",
                headers=headers,
                files=[("files", item) for item in files],
            )
            assert answer.status_code == 207, answer.text
            results = answer.json()["results"]
            statuses = [result["status"] for result in results]
            assert statuses.count(201) == 2, (kind, position, statuses)
            assert statuses[position] != 201
            for (_, content, _), result in zip(files, results, strict=True):
                if result["status"] != 201:
                    continue
                document_id = result["document"]["id"]
                download = await client.get(
                    f"/api/v1/documents/{document_id}/content", headers=headers
                )
                assert download.status_code == 200, (kind, position, download.text)
                assert download.content == content
