"""Documents end to end: upload rules, reads, changes, downloads, search."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.documents.schemas import DocumentOut
from backend.kit.event_bus import EventBus
from backend.kit.pagination import CursorPage, Page
from backend.kit.storage import get_storage
from tests.documents.helpers import (
    PNG_BYTES,
    TEXT_BYTES,
    docx_bytes,
    unique_pdf,
    upload,
)
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job


@pytest.fixture
async def owner(app: Any) -> dict[str, str]:
    tenant = await make_tenant(app)
    return bearer_headers(app, tenant.owner)


async def _blob_count(app: Any) -> int:
    root = get_storage(app.state.settings).root  # type: ignore[attr-defined]
    if not root.exists():
        return 0
    return sum(1 for path in root.rglob("*") if path.is_file())


async def _rows(owner_engine: AsyncEngine, table: str) -> int:
    async with owner_engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_upload_get_and_download(
    client: httpx.AsyncClient, owner: dict[str, str], app: Any
) -> None:
    content = unique_pdf()
    answer = await upload(client, owner, content, data={"title": "Q3", "tags": "a, b,a"})
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert answer.headers["Location"].endswith(f"/api/v1/documents/{document['id']}")
    assert answer.headers["ETag"] == 'W/"1"'
    assert document["sha256"] == hashlib.sha256(content).hexdigest()
    assert document["size"] == len(content)
    assert document["mime_type"] == "application/pdf"
    assert document["title"] == "Q3"
    assert document["tags"] == ["a", "b"]
    assert document["status"] == "uploaded"

    got = await client.get(f"/api/v1/documents/{document['id']}", headers=owner)
    assert got.status_code == 200
    assert got.json()["id"] == document["id"]

    body = await client.get(f"/api/v1/documents/{document['id']}/content", headers=owner)
    assert body.status_code == 200
    assert body.content == content
    assert body.headers["content-type"] == "application/pdf"
    assert "content-encoding" not in body.headers  # binary downloads are not re-compressed
    assert body.headers["content-length"] == str(len(content))
    assert body.headers["etag"] == f'"{document["sha256"]}"'
    assert body.headers["content-disposition"].startswith('attachment; filename="report.pdf"')
    inline = await client.get(
        f"/api/v1/documents/{document['id']}/content?disposition=inline", headers=owner
    )
    assert inline.headers["content-disposition"].startswith("inline;")


async def test_ranges_and_conditional_get(client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    content = unique_pdf()
    document = (await upload(client, owner, content)).json()
    url = f"/api/v1/documents/{document['id']}/content"
    part = await client.get(url, headers={**owner, "Range": "bytes=5-14"})
    assert part.status_code == 206
    assert part.content == content[5:15]
    assert part.headers["content-range"] == f"bytes 5-14/{len(content)}"
    suffix = await client.get(url, headers={**owner, "Range": "bytes=-4"})
    assert suffix.status_code == 206
    assert suffix.content == content[-4:]
    for bad in ("bytes=999999-", "garbage", "bytes=abc", "bytes=9-3"):
        refused = await client.get(url, headers={**owner, "Range": bad})
        assert refused.status_code == 416, bad
        assert refused.json()["code"] == "range_not_satisfiable"
        assert refused.headers["content-range"] == f"bytes */{len(content)}"
    etag = part.headers["etag"]
    cached = await client.get(url, headers={**owner, "If-None-Match": etag})
    assert cached.status_code == 304


async def test_text_downloads_are_sent_as_stored(
    client: httpx.AsyncClient, owner: dict[str, str], app: Any
) -> None:
    """Not compressed on the fly: the length, ranges and the strong ETag are
    those of the stored bytes."""
    content = b"".join(f"line {n} of a long plain text file\n".encode() for n in range(2000))
    assert len(content) > app.state.settings.gzip_minimum_size
    document = (
        await upload(client, owner, content, filename="notes.txt", content_type="text/plain")
    ).json()
    url = f"/api/v1/documents/{document['id']}/content"
    answer = await client.get(url, headers={**owner, "Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert answer.headers["content-length"] == str(len(content))
    assert answer.content == content


async def test_types_are_decided_by_content(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    ok = [
        (PNG_BYTES, "scan.png", "image/png", "image/png"),
        (TEXT_BYTES, "notes.txt", "text/plain", "text/plain"),
        (
            docx_bytes(),
            "letter.docx",
            "application/octet-stream",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (b"\xff\xd8\xff\xe0" + b"jpegdata" * 10, "photo.jpg", "image/jpg", "image/jpeg"),
        (b"II*\x00" + b"tiff" * 10, "fax.tif", "image/tiff", "image/tiff"),
    ]
    for content, name, claimed, expected in ok:
        answer = await upload(client, owner, content, filename=name, content_type=claimed)
        assert answer.status_code == 201, (name, answer.text)
        assert answer.json()["mime_type"] == expected
    refused = [
        (b"MZ\x90\x00" + b"\x00" * 100, "tool.exe", "application/octet-stream"),
        (b"GIF89a" + b"\x00\x01" * 50, "a.gif", "image/gif"),
        (unique_pdf(), "claims.png", "image/png"),  # claimed type disagrees
        (TEXT_BYTES + b"\x00\x01binary", "bad.txt", "text/plain"),
        (b"caf\xe9 latin-1 text", "latin.txt", "text/plain"),
    ]
    for content, name, claimed in refused:
        answer = await upload(client, owner, content, filename=name, content_type=claimed)
        assert answer.status_code == 415, (name, answer.text)
        assert answer.json()["code"] == "unsupported_media_type"


async def test_bad_uploads_store_nothing(
    client: httpx.AsyncClient, owner: dict[str, str], app: Any, owner_engine: AsyncEngine
) -> None:
    before = await _blob_count(app)
    empty = await upload(client, owner, b"")
    assert empty.status_code == 400
    assert empty.json()["code"] == "empty_file"
    missing = await client.post(
        "/api/v1/documents", headers=owner, files={"other": ("a.pdf", unique_pdf())}
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "file"]
    malformed = await client.post(
        "/api/v1/documents",
        headers={**owner, "Content-Type": "multipart/form-data; boundary=xyz"},
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
    )
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_request"
    no_boundary = await client.post(
        "/api/v1/documents", headers={**owner, "Content-Type": "multipart/form-data"}, content=b"x"
    )
    assert no_boundary.status_code == 400
    not_multipart = await client.post("/api/v1/documents", headers=owner, json={"file": "x"})
    assert not_multipart.status_code == 415
    long_title = await upload(client, owner, data={"title": "t" * 1_000_000})
    assert long_title.status_code == 422
    assert long_title.json()["errors"][0]["loc"] == [
        "body",
        "title",
    ]
    many_tags = await upload(client, owner, data={"tags": ",".join(f"t{i}" for i in range(10_000))})
    assert many_tags.status_code == 422
    other = await make_tenant(app)
    case = await client.post(
        "/api/v1/cases", headers=bearer_headers(app, other.owner), json={"title": "theirs"}
    )
    foreign = await upload(client, owner, data={"case_id": case.json()["id"]})
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["loc"] == ["body", "case_id"]
    assert await _rows(owner_engine, "documents") == 0
    assert await _blob_count(app) == before


async def test_size_limit_is_enforced_while_streaming(app: Any, settings: Any) -> None:
    from backend.main import create_app

    small = create_app(settings.model_copy(update={"max_upload_bytes": 1000}))
    async with small.router.lifespan_context(small):
        tenant = await make_tenant(small)
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = bearer_headers(small, tenant.owner)
            ok = await upload(client, headers, b"%PDF-" + b"x" * 900)
            assert ok.status_code == 201
            big = await upload(client, headers, b"%PDF-" + b"x" * 5000)
            assert big.status_code == 413
            assert big.json()["code"] == "payload_too_large"
            huge = await upload(client, headers, b"%PDF-" + b"x" * 6 * 1024 * 1024)
            assert huge.status_code == 413
    staging = get_storage(settings).root / ".staging"  # type: ignore[attr-defined]
    assert not staging.exists() or list(staging.iterdir()) == []


async def test_filenames_are_sanitised(client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    raw_name = "..\\..\\etc/pa\x07sswd\u202e.pdf".encode()
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="'
        + raw_name
        + b'"\r\nContent-Type: application/pdf\r\n\r\n'
        + unique_pdf()
        + b"\r\n--b0undary--\r\n"
    )
    answer = await client.post(
        "/api/v1/documents",
        headers={**owner, "Content-Type": "multipart/form-data; boundary=b0undary"},
        content=body,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["filename"] == "pa" + "sswd.pdf"
    long = await upload(client, owner, filename="é" * 300 + ".pdf")
    name = long.json()["filename"]
    assert name.endswith(".pdf")
    assert len(name.encode()) <= 255


async def test_duplicates(client: httpx.AsyncClient, owner: dict[str, str], app: Any) -> None:
    content = unique_pdf()
    first = (await upload(client, owner, content)).json()
    again = await upload(client, owner, content)
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_document"
    assert again.json()["existing_id"] == first["id"]
    kept = await upload(client, owner, content, params={"allow_duplicate": "true"})
    assert kept.status_code == 201
    assert kept.json()["id"] != first["id"]
    other = await make_tenant(app)
    theirs = await upload(client, bearer_headers(app, other.owner), content)
    assert theirs.status_code == 201  # duplicates are per tenant
    # a deleted document no longer counts; restoring it while another is live conflicts
    await client.delete(f"/api/v1/documents/{kept.json()['id']}", headers=owner)
    assert (
        await client.delete(f"/api/v1/documents/{first['id']}", headers=owner)
    ).status_code == 204
    fresh = await upload(client, owner, content)
    assert fresh.status_code == 201
    restored = await client.post(f"/api/v1/documents/{first['id']}/restore", headers=owner)
    assert restored.status_code == 409
    assert restored.json()["existing_id"] == fresh.json()["id"]
    restored_dup = await client.post(
        f"/api/v1/documents/{kept.json()['id']}/restore", headers=owner
    )
    assert restored_dup.status_code == 200


async def test_patch_if_match_delete_restore(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    owner, member = bearer_headers(app, tenant.owner), bearer_headers(app, tenant.users["member"])
    document = (await upload(client, member)).json()
    url = f"/api/v1/documents/{document['id']}"
    changed = await client.patch(
        url, headers={**member, "If-Match": 'W/"1"'}, json={"title": "New"}
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == 2
    assert changed.headers["ETag"] == 'W/"2"'
    stale = await client.patch(url, headers={**member, "If-Match": 'W/"1"'}, json={"title": "X"})
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    assert (await client.patch(url, headers=member, json={"title": None})).status_code == 422
    assert (await client.delete(url, headers=member)).status_code == 403
    assert (await client.delete(url, headers=owner)).status_code == 204
    assert (await client.get(url, headers=owner)).status_code == 404
    listed = await client.get("/api/v1/documents", headers=owner)
    assert listed.json()["total"] == 0
    denied = await client.get("/api/v1/documents?include_deleted=true", headers=member)
    assert denied.status_code == 403
    shown = await client.get("/api/v1/documents?include_deleted=true", headers=owner)
    assert [item["id"] for item in shown.json()["items"]] == [document["id"]]
    restored = await client.post(f"{url}/restore", headers=owner)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    async with app.state.db.transaction() as session:
        from backend.kit.db import system_scope

        with system_scope("tests"):
            await session.execute(text("SELECT 1"))
    actions = await client.get(
        "/api/v1/audit-events", headers=owner, params={"resource_id": document["id"]}
    )
    assert {item["action"] for item in actions.json()["items"]} >= {
        "document.created",
        "document.updated",
        "document.deleted",
        "document.restored",
    }


async def test_signed_download_url(
    client: httpx.AsyncClient, owner: dict[str, str], app: Any
) -> None:
    content = unique_pdf()
    document = (await upload(client, owner, content)).json()
    signed = await client.get(f"/api/v1/documents/{document['id']}/download-url", headers=owner)
    assert signed.status_code == 200
    url = signed.json()["url"]
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    fetched = await client.get(path)  # no credentials
    assert fetched.status_code == 200
    assert fetched.content == content
    sig_at = path.index("sig=") + 4
    flipped = path[:sig_at] + ("A" if path[sig_at] != "A" else "B") + path[sig_at + 1 :]
    assert (await client.get(flipped)).status_code == 403
    expired = path.replace("expires=", "expires=1")  # changes the signed expiry
    assert (await client.get(expired)).status_code == 403
    import time
    import uuid

    from backend.documents.models import Document
    from backend.documents.service import document_service

    fake = Document(id=uuid.UUID(document["id"]), tenant_id=uuid.uuid4())
    params, _ = document_service.sign_download(app.state.settings, fake)
    other_tenant = await client.get(parts.path, params=params)
    assert other_tenant.status_code == 404
    real = Document(id=uuid.UUID(document["id"]), tenant_id=uuid.UUID(parse_tenant(path)))
    old, _ = document_service.sign_download(app.state.settings, real, now=time.time() - 7200)
    assert (await client.get(parts.path, params=old)).status_code == 403
    await client.delete(f"/api/v1/documents/{document['id']}", headers=owner)
    assert (await client.get(path)).status_code == 404


def parse_tenant(path: str) -> str:
    from urllib.parse import parse_qs

    return parse_qs(path.split("?", 1)[1])["tenant"][0]


async def test_list_filters_sort_and_search(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    a = (await upload(client, owner, data={"title": "Kestrel migration", "tags": "birds"})).json()
    b = (
        await upload(client, owner, data={"title": "Budget", "description": "kestrels eat mice"})
    ).json()
    c = (
        await upload(
            client,
            owner,
            TEXT_BYTES,
            filename="n.txt",
            content_type="text/plain",
            data={"title": "Zebra"},
        )
    ).json()
    found = await client.get("/api/v1/documents", headers=owner, params={"q": "kestrel"})
    assert [item["id"] for item in found.json()["items"]] == [a["id"], b["id"]]  # title ranks first
    assert (await client.get("/api/v1/documents", headers=owner, params={"q": "giraffe"})).json()[
        "total"
    ] == 0
    tagged = await client.get("/api/v1/documents", headers=owner, params={"tag": "birds"})
    assert [item["id"] for item in tagged.json()["items"]] == [a["id"]]
    texts = await client.get("/api/v1/documents", headers=owner, params={"mime_type": "text/plain"})
    assert [item["id"] for item in texts.json()["items"]] == [c["id"]]
    by_title = await client.get("/api/v1/documents", headers=owner, params={"sort": "title"})
    assert [item["title"] for item in by_title.json()["items"]] == [
        "Budget",
        "Kestrel migration",
        "Zebra",
    ]
    first = await client.get("/api/v1/documents", headers=owner, params={"limit": 2})
    assert len(first.json()["items"]) == 2
    assert first.json()["next_cursor"]
    rest = await client.get(
        "/api/v1/documents",
        headers=owner,
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    ids = [item["id"] for item in first.json()["items"] + rest.json()["items"]]
    assert ids == [c["id"], b["id"], a["id"]]
    assert rest.json()["next_cursor"] is None
    # A listed document is the same as the one answer for it.
    one = await client.get(f"/api/v1/documents/{a['id']}", headers=owner)
    assert rest.json()["items"][0] == one.json()

    async def ids(**params: str) -> list[str]:
        answer = await client.get("/api/v1/documents", headers=owner, params=params)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    # Searches sorted by a field, keyset pages, status and time windows.
    assert await ids(q="kestrel", sort="title") == [b["id"], a["id"]]
    assert await ids(q="kestrel", limit="1", tag="birds") == [a["id"]]
    assert await ids(status="uploaded", sort="created_at") == [a["id"], b["id"], c["id"]]
    assert await ids(status="processed") == []
    assert await ids(created_after=b["created_at"], created_before=c["created_at"]) == [b["id"]]
    assert await ids(created_after=c["created_at"], mime_type="application/pdf") == []
    assert (
        await client.get("/api/v1/documents", headers=owner, params={"sort": "sha256"})
    ).status_code == 422
    assert (
        await client.get("/api/v1/documents", headers=owner, params={"status": "nope"})
    ).status_code == 422


async def test_bulk_upload(client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    duplicate = unique_pdf()
    await upload(client, owner, duplicate)
    files = [
        ("files", ("one.pdf", unique_pdf(), "application/pdf")),
        ("files", ("two.exe", b"MZ\x90\x00" * 10, "application/octet-stream")),
        ("files", ("three.pdf", duplicate, "application/pdf")),
        ("files", ("four.txt", TEXT_BYTES, "text/plain")),
        ("files", ("empty.pdf", b"", "application/pdf")),
    ]
    answer = await client.post(
        "/api/v1/documents/bulk", headers=owner, files=files, data={"tags": "batch"}
    )
    assert answer.status_code == 207, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 415, 409, 201, 400]
    assert results[0]["document"]["tags"] == ["batch"]
    assert results[2]["error"]["code"] == "duplicate_document"
    assert results[4]["error"]["code"] == "empty_file"
    listed = await client.get("/api/v1/documents", headers=owner)
    assert listed.json()["total"] == 3


async def test_document_updated_has_one_shape(client: httpx.AsyncClient, app: Any) -> None:
    """`document.updated` carries the document's fields and `changes`, whether
    a person changed the document or its text extraction did."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    document = (
        await upload(
            client,
            headers,
            b"plain words to extract",
            content_type="text/plain",
            filename="words.txt",
        )
    ).json()
    await client.patch(f"/api/v1/documents/{document['id']}", headers=headers, json={"title": "T"})
    bus = EventBus(app.state.redis, app.state.settings.redis_key_prefix)

    async def updates() -> list[dict[str, Any]]:
        recent = await bus.recent(tenant.id, None)
        return [event["data"] for event in recent if event["type"] == "document.updated"]

    async with running_worker(app):
        jobs = await client.get(
            "/api/v1/jobs", headers=headers, params={"document_id": document["id"]}
        )
        await wait_for_job(client, headers, jobs.json()["items"][0]["id"])
        # The worker publishes its events in the background, after commit.
        deadline = asyncio.get_running_loop().time() + 10
        while not any("status" in data["changes"] for data in await updates()):
            assert asyncio.get_running_loop().time() < deadline, await updates()
            await asyncio.sleep(0.1)
    for data in await updates():
        assert {"id", "title", "filename", "status", "changes"} <= set(data)
    assert any(data["changes"] == ["title"] for data in await updates())


async def test_list_bytes_are_what_the_response_model_answers(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    """Lists are serialised from rows by orjson, not through the response
    model: each item must be exactly what `DocumentOut` answers for the same
    document (the single-document route goes through the model), and both
    envelopes must validate as the route's response model."""
    first = (await upload(client, owner, data={"title": "One", "tags": "a,b"})).json()
    await upload(client, owner, TEXT_BYTES, filename="n.txt", content_type="text/plain")
    for params in ({"limit": "1"}, {"page_size": "5"}):
        listed = await client.get("/api/v1/documents", headers=owner, params=params)
        assert listed.headers["content-type"] == "application/json"
        body = listed.json()
        model = CursorPage[DocumentOut] if "limit" in params else Page[DocumentOut]
        assert model.model_validate(body).model_dump(mode="json") == body
        for item in body["items"]:
            single = await client.get(f"/api/v1/documents/{item['id']}", headers=owner)
            assert item == single.json()
    page = await client.get("/api/v1/documents", headers=owner, params={"sort": "created_at"})
    assert page.json()["items"][0]["id"] == first["id"]
