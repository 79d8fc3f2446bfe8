"""Document intelligence through the API: upload, extraction and field jobs
on the worker, the text/pages/image routes with their status codes, PATCH
corrections, list filters, the search language, German stemming, and
isolation between tenants."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import time
from typing import Any

import pytest
from PIL import Image

from backend.documents.intelligence import ocr
from tests.documents.helpers import upload
from tests.documents.intelligence import corpus
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker

needs_tesseract = pytest.mark.skipif(
    not {"eng", "deu"} <= ocr.installed_languages(), reason="Tesseract eng+deu not installed"
)
PDF = "application/pdf"


@functools.cache
def german_invoice() -> corpus.Sample:
    return corpus.invoice(3, "de", 0)


@functools.cache
def english_receipt() -> corpus.Sample:
    return corpus.receipt(3, "en", 1)


async def _processed(
    client: Any, app: Any, headers: dict[str, str], ids: list[str], *, fields: bool = True
) -> list[dict[str, Any]]:
    """Run the worker until every document is processed (and classified)."""
    deadline = time.monotonic() + 120
    async with running_worker(app):
        while True:
            documents = [
                (await client.get(f"/api/v1/documents/{i}", headers=headers)).json() for i in ids
            ]
            done = all(
                d["status"] in ("processed", "failed")
                and (not fields or d["status"] == "failed" or d["document_type"] is not None)
                for d in documents
            )
            if done:
                if any(d["status"] == "failed" for d in documents):
                    jobs = (await client.get("/api/v1/jobs", headers=headers)).json()["items"]
                    raise AssertionError([(job["type"], job["error"]) for job in jobs])
                return documents
            assert time.monotonic() < deadline, documents
            await asyncio.sleep(0.1)


async def test_text_layer_invoice_end_to_end(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    sample = german_invoice()
    answer = await upload(
        client,
        headers,
        sample.pdf,
        filename="rechnung.pdf",
        content_type=PDF,
        data={"metadata": json.dumps({"project": "alpha", "cost_centre": "4711"})},
    )
    assert answer.status_code == 201, answer.text
    document = answer.json()
    doc_id = document["id"]
    assert document["metadata"] == {"project": "alpha", "cost_centre": "4711"}
    assert document["document_type"] is None
    assert document["confidence"] is None
    base = f"/api/v1/documents/{doc_id}"
    for path in ("/text", "/pages", "/pages/1"):
        refused = await client.get(base + path, headers=headers)
        assert refused.status_code == 409, path
        assert refused.json()["code"] == "not_processed"

    [document] = await _processed(client, app, headers, [doc_id])
    assert document["status"] == "processed"
    assert document["language"] == "de"
    assert document["confidence"] == 1.0
    assert document["document_type"] == "invoice"
    data = document["extracted_data"]
    for name in (
        "invoice_number",
        "invoice_date",
        "supplier_vat_id",
        "supplier_iban",
        "total_amount",
    ):
        assert data[name] == sample.truth[name], name
    assert document["extraction"]["corrected"] is False
    assert 0 < document["extraction"]["confidence"]["total_amount"] <= 1

    text = await client.get(base + "/text", headers=headers)
    assert text.status_code == 200
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert sample.truth["invoice_number"] in text.text
    assert (await client.get(base + "/text?page=1", headers=headers)).text == text.text
    assert (await client.get(base + "/text?page=2", headers=headers)).status_code == 404
    pages = (await client.get(base + "/pages", headers=headers)).json()
    assert pages == [
        {
            "number": 1,
            "method": "text",
            "characters": len(text.text),
            "confidence": 1.0,
            "language": "de",
            "width": 595.28,
            "height": 841.89,
        }
    ]
    page = (await client.get(base + "/pages/1", headers=headers)).json()
    assert page["text"] == text.text
    assert (await client.get(base + "/pages/2", headers=headers)).status_code == 404

    # German stemming: "Rechnungen" finds a document saying "Rechnung".
    found = await client.get("/api/v1/documents", params={"q": "Rechnungen"}, headers=headers)
    assert [item["id"] for item in found.json()["items"]] == [doc_id]

    # A person's correction is kept, and a re-run leaves it alone.
    corrected = await client.patch(
        base, json={"extracted_data": {**data, "total_amount": "1.00"}}, headers=headers
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["extraction"]["corrected"] is True
    job = await client.post(
        "/api/v1/jobs",
        json={"type": "document.extract_fields", "document_id": doc_id},
        headers=headers,
    )
    assert job.status_code == 202
    async with running_worker(app):
        deadline = time.monotonic() + 30
        while (await client.get(f"/api/v1/jobs/{job.json()['id']}", headers=headers)).json()[
            "status"
        ] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    after = (await client.get(base, headers=headers)).json()
    assert after["extracted_data"]["total_amount"] == "1.00"
    assert after["extraction"]["corrected"] is True


async def test_page_images_render_with_etag(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    document = (await upload(client, headers, german_invoice().pdf, content_type=PDF)).json()
    base = f"/api/v1/documents/{document['id']}/pages"
    image = await client.get(f"{base}/1/image?width=300", headers=headers)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(image.content)) as picture:
        assert picture.width == 300
        assert abs(picture.height - 424) <= 1
    etag = image.headers["etag"]
    assert not etag.startswith("W/")
    again = await client.get(
        f"{base}/1/image?width=300", headers={**headers, "If-None-Match": etag}
    )
    assert again.status_code == 304
    assert (await client.get(f"{base}/2/image", headers=headers)).status_code == 404
    assert (await client.get(f"{base}/1/image?width=63", headers=headers)).status_code == 422
    assert (await client.get(f"{base}/1/image?width=2001", headers=headers)).status_code == 422
    text_doc = (
        await upload(
            client, headers, b"plain words here", filename="a.txt", content_type="text/plain"
        )
    ).json()
    refused = await client.get(f"/api/v1/documents/{text_doc['id']}/pages/1/image", headers=headers)
    assert refused.status_code == 415
    assert refused.json()["code"] == "unsupported_media_type"


@needs_tesseract
async def test_mixed_pdf_and_multipage_tiff_are_read_page_by_page(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    text_pdf = corpus.text_page(["First page has a text layer with enough words."])
    scanned = corpus.render_pages(corpus.text_page(["Second page was scanned on paper."]))[0]
    mixed = corpus.merge_pdfs([text_pdf, corpus.image_pdf([scanned])])
    frames = [
        corpus.render_pages(corpus.text_page([line], width=120, height=40))[0]
        for line in ("Frame one of the fax", "Frame two of the fax")
    ]
    first = (await upload(client, headers, mixed, filename="mixed.pdf", content_type=PDF)).json()
    second = (
        await upload(
            client, headers, corpus.tiff(frames), filename="fax.tiff", content_type="image/tiff"
        )
    ).json()
    documents = await _processed(client, app, headers, [first["id"], second["id"]])
    assert [d["status"] for d in documents] == ["processed", "processed"]
    pages = (await client.get(f"/api/v1/documents/{first['id']}/pages", headers=headers)).json()
    assert [p["method"] for p in pages] == ["text", "ocr"]
    assert pages[0]["confidence"] == 1.0
    assert 0.5 < pages[1]["confidence"] < 1
    assert (
        "scanned"
        in (await client.get(f"/api/v1/documents/{first['id']}/text?page=2", headers=headers)).text
    )
    assert 0.5 < documents[0]["confidence"] < 1
    tiff_pages = (
        await client.get(f"/api/v1/documents/{second['id']}/pages", headers=headers)
    ).json()
    assert [(p["number"], p["method"]) for p in tiff_pages] == [(1, "ocr"), (2, "ocr")]
    assert tiff_pages[0]["width"] == frames[0].width
    text = (await client.get(f"/api/v1/documents/{second['id']}/text", headers=headers)).text
    assert "Frame one" in text
    assert "Frame two" in text
    assert "\f" in text
    image = await client.get(
        f"/api/v1/documents/{second['id']}/pages/2/image?width=200", headers=headers
    )
    assert image.status_code == 200


async def test_filters_and_search_language(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    invoice, receipt = german_invoice(), english_receipt()
    first = (
        await upload(
            client,
            headers,
            invoice.pdf,
            content_type=PDF,
            data={"metadata": json.dumps({"project": "alpha"}), "tags": "q1"},
        )
    ).json()
    second = (
        await upload(
            client,
            headers,
            receipt.pdf,
            content_type=PDF,
            data={"metadata": json.dumps({"project": "beta", "rank": 3})},
        )
    ).json()
    await _processed(client, app, headers, [first["id"], second["id"]])

    async def listed(**params: Any) -> set[str]:
        answer = await client.get("/api/v1/documents", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}

    assert await listed(document_type="invoice") == {first["id"]}
    assert await listed(language="en") == {second["id"]}
    supplier = invoice.truth["supplier_name"]
    assert await listed(supplier=supplier[2:8].upper()) == {first["id"]}
    assert await listed(supplier=invoice.truth["supplier_vat_id"]) == {first["id"]}
    assert await listed(**{"metadata.project": "beta"}) == {second["id"]}
    assert (
        await client.get("/api/v1/documents?metadata.bad%20key=1", headers=headers)
    ).status_code == 422

    async def search(body: dict[str, Any]) -> set[str]:
        answer = await client.post("/api/v1/documents/search", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}

    total = invoice.truth["total_amount"]
    both = {first["id"], second["id"]}
    assert (
        await search({"filter": {"field": "extracted_data.total_amount", "op": "gt", "value": 0}})
        == both
    )
    assert await search(
        {"filter": {"field": "extracted_data.total_amount", "op": "eq", "value": total}}
    ) == {first["id"]}
    assert (
        await search(
            {
                "filter": {
                    "field": "extracted_data.total_amount",
                    "op": "gte",
                    "value": float(total) + 0.01,
                }
            }
        )
        == set()
    )
    assert await search(
        {"filter": {"field": "document_type", "op": "in", "value": ["receipt", "contract"]}}
    ) == {second["id"]}
    assert await search({"filter": {"field": "document_type", "op": "ne", "value": "receipt"}}) == {
        first["id"]
    }
    assert await search({"filter": {"field": "title", "op": "contains", "value": "PDF"}}) == both
    assert await search({"filter": {"field": "tags", "op": "contains", "value": "q1"}}) == {
        first["id"]
    }
    assert await search({"filter": {"field": "metadata.rank", "op": "lt", "value": 4}}) == {
        second["id"]
    }
    assert await search({"filter": {"field": "metadata.rank", "op": "exists", "value": True}}) == {
        second["id"]
    }
    assert await search(
        {"filter": {"field": "metadata.project", "op": "eq", "value": "alpha"}}
    ) == {first["id"]}
    assert await search(
        {"filter": {"field": "extracted_data.line_items", "op": "exists", "value": False}}
    ) == {second["id"]}
    assert await search(
        {"filter": {"field": "extracted_data.invoice_date", "op": "gte", "value": "2000-01-01"}}
    ) == {first["id"]}
    assert await search({"filter": {"field": "size", "op": "gt", "value": 10}}) == both
    assert (
        await search(
            {"filter": {"field": "created_at", "op": "lt", "value": "2000-01-01T00:00:00Z"}}
        )
        == set()
    )
    assert await search(
        {
            "filter": {
                "not": {
                    "or": [
                        {"field": "language", "op": "eq", "value": "de"},
                        {"field": "status", "op": "ne", "value": "processed"},
                    ]
                }
            }
        }
    ) == {second["id"]}
    assert await search({"q": "Rechnungen"}) == {first["id"]}
    page = await client.post(
        "/api/v1/documents/search", json={"limit": 1, "sort": "title"}, headers=headers
    )
    assert page.json()["next_cursor"]
    assert len(page.json()["items"]) == 1
    offset = await client.post(
        "/api/v1/documents/search", json={"page": 1, "page_size": 1}, headers=headers
    )
    assert offset.json()["total"] == 2


BAD_FILTERS: list[dict[str, Any]] = [
    {"field": "owner", "op": "eq", "value": "x"},
    {"field": "title", "op": "like", "value": "x"},
    {"field": "size", "op": "eq", "value": "big"},
    {"field": "created_at", "op": "gt", "value": "yesterday"},
    {"field": "metadata.a b", "op": "eq", "value": "x"},
    {"field": "title", "op": "in", "value": []},
    {"and": []},
    {"not": {"not": {"not": {"not": {"not": {"field": "title", "op": "eq", "value": "x"}}}}}},
    {"or": [{"field": "title", "op": "eq", "value": str(i)} for i in range(51)]},
    {"field": "title", "op": "eq"},
    {"field": "tags", "op": "lt", "value": "a"},
    {"field": "case_id", "op": "eq", "value": "not-a-uuid"},
]


async def test_search_refuses_bad_filters(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    for bad in BAD_FILTERS:
        answer = await client.post(
            "/api/v1/documents/search", json={"filter": bad}, headers=headers
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["code"] == "validation_error"
        assert answer.json()["errors"][0]["loc"][:2] == ["body", "filter"]
    deep = {"not": {"not": {"not": {"not": {"field": "title", "op": "eq", "value": "x"}}}}}
    fifty = {"or": [{"field": "title", "op": "eq", "value": str(i)} for i in range(50)]}
    for fine in (deep, fifty):
        answer = await client.post(
            "/api/v1/documents/search", json={"filter": fine}, headers=headers
        )
        assert answer.status_code == 200, answer.text


async def test_metadata_limit_and_patch(client: Any, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    big = json.dumps({"blob": "x" * 17_000})
    refused = await upload(
        client, headers, german_invoice().pdf, content_type=PDF, data={"metadata": big}
    )
    assert refused.status_code == 413
    assert (
        await upload(client, headers, content_type=PDF, data={"metadata": "[1]"})
    ).status_code == 422
    document = (await upload(client, headers, content_type=PDF)).json()
    base = f"/api/v1/documents/{document['id']}"
    assert (
        await client.patch(base, json={"metadata": {"blob": "x" * 17_000}}, headers=headers)
    ).status_code == 413
    changed = await client.patch(
        base, json={"metadata": {"k": "v"}, "document_type": "contract"}, headers=headers
    )
    assert changed.status_code == 200
    assert changed.json()["metadata"] == {"k": "v"}
    assert changed.json()["document_type"] == "contract"
    assert (
        await client.patch(base, json={"document_type": "poem"}, headers=headers)
    ).status_code == 422
    audit = await client.get(
        "/api/v1/audit-events", params={"resource_id": document["id"]}, headers=headers
    )
    assert any("metadata" in (event["changes"] or {}) for event in audit.json()["items"])


async def test_other_tenants_get_404_and_search_stays_home(client: Any, app: Any) -> None:
    home = await make_tenant(app)
    away = await make_tenant(app)
    home_headers, away_headers = bearer_headers(app, home.owner), bearer_headers(app, away.owner)
    mine = (await upload(client, home_headers, german_invoice().pdf, content_type=PDF)).json()
    theirs = (await upload(client, away_headers, english_receipt().pdf, content_type=PDF)).json()
    await _processed(client, app, home_headers, [mine["id"]])
    await _processed(client, app, away_headers, [theirs["id"]])
    for path in ("", "/text", "/pages", "/pages/1", "/pages/1/image"):
        answer = await client.get(f"/api/v1/documents/{mine['id']}{path}", headers=away_headers)
        assert answer.status_code == 404, path
    patched = await client.patch(
        f"/api/v1/documents/{mine['id']}", json={"metadata": {}}, headers=away_headers
    )
    assert patched.status_code == 404
    everything = await client.post(
        "/api/v1/documents/search", json={"q": "Rechnung"}, headers=away_headers
    )
    assert everything.json()["items"] == []
    listed = await client.post("/api/v1/documents/search", json={}, headers=away_headers)
    assert [item["id"] for item in listed.json()["items"]] == [theirs["id"]]
