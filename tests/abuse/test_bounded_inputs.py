"""Bounded inputs: bodies are limited while they are read (before parsing),
only upload routes stream more, and every list a request schema accepts has
a maximum length."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.documents.helpers import upload
from tests.factories import bearer_headers, make_tenant

MIB = 1024 * 1024


async def test_an_anonymous_huge_json_body_is_refused_by_its_length(
    client: httpx.AsyncClient, app: Any
) -> None:
    nested = b'{"refresh_token": ' + b"[" * (2 * MIB) + b"]" * (2 * MIB) + b"}"
    response = await client.post(
        "/api/v1/auth/refresh", content=nested, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_chunked_body_is_cut_off_while_it_is_read(client: httpx.AsyncClient) -> None:
    """No Content-Length: the server stops reading once it passed the limit,
    it never pulls the 100 MiB the client offers."""
    sent = 0

    async def trickle() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"[" * 65536
        for _ in range(100 * MIB // len(chunk)):
            sent += len(chunk)
            yield chunk

    response = await client.post(
        "/api/v1/auth/refresh", content=trickle(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert sent <= 2 * MIB, f"the server read {sent} bytes of an oversized body"


async def test_json_under_the_limit_still_parses(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    body = {"title": "x" * 100, "description": "d" * 200_000}
    response = await client.post("/api/v1/cases", json=body, headers=headers)
    assert response.status_code in (201, 422), response.text


async def test_upload_routes_stream_more_than_the_json_limit(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    content = b"plain text line\n" * (2 * MIB // 16)
    response = await upload(client, headers, content, filename="big.txt", content_type="text/plain")
    assert response.status_code == 201, response.text
    assert response.json()["size"] == len(content)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _unbounded_arrays(
    schema: dict[str, Any], components: dict[str, Any], where: str, seen: set[str]
) -> list[str]:
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return []
        seen = seen | {ref}
    schema = _resolve(schema, components)
    found: list[str] = []
    if schema.get("type") == "array":
        if "maxItems" not in schema:
            found.append(where)
        if isinstance(schema.get("items"), dict):
            found += _unbounded_arrays(schema["items"], components, f"{where}[]", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for index, option in enumerate(schema.get(key, ())):
            found += _unbounded_arrays(option, components, f"{where}|{index}", seen)
    for name, prop in schema.get("properties", {}).items():
        found += _unbounded_arrays(prop, components, f"{where}.{name}", seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        found += _unbounded_arrays(extra, components, f"{where}.*", seen)
    return found


def test_every_list_in_a_request_schema_has_a_maximum_length(app: Any) -> None:
    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    unbounded: list[str] = []
    bodies = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                if "schema" not in body or media == "application/octet-stream":
                    continue
                bodies += 1
                unbounded += _unbounded_arrays(
                    body["schema"], components, f"{method.upper()} {path} ({media})", set()
                )
    assert bodies > 20
    assert unbounded == []
