"""A NUL character anywhere a client can put text (a JSON field, JSONB, a
query parameter, a path, a form field) is a 422 `validation_error`, never a
500 from the database, and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx

from tests.documents.helpers import upload
from tests.factories import bearer_headers, make_tenant


def assert_nul_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["type"] == "string_nul"


async def test_json_text_and_jsonb_fields(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    assert_nul_refused(
        await client.post("/api/v1/cases", headers=headers, json={"title": "bad\u0000title"})
    )
    assert_nul_refused(
        await client.post(
            "/api/v1/cases", headers=headers, json={"title": "ok", "metadata": {"k": "v\u0000"}}
        )
    )
    listed = await client.get("/api/v1/cases", headers=headers)
    assert listed.json()["total"] == 0


async def test_query_path_and_form_fields(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    assert_nul_refused(await client.get("/api/v1/cases?q=a%00b", headers=headers))
    assert_nul_refused(await client.get("/api/v1/cases/a%00b", headers=headers))
    assert_nul_refused(await upload(client, headers, data={"title": "a\u0000b"}))
    documents = await client.get("/api/v1/documents", headers=headers)
    assert documents.json()["total"] == 0
