"""Every error is RFC 9457 problem+json with a stable code and the request id;
nothing internal reaches the client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from backend.main import create_app
from backend.settings import Settings

PROBLEM = "application/problem+json"


class Payload(BaseModel):
    name: str
    count: int


@pytest.fixture(scope="module")
async def probe_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)

    @app.get("/probe/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: SELECT password FROM users")

    @app.get("/probe/connection-lost")
    async def connection_lost() -> None:
        raise DBAPIError("SELECT 1", {}, OSError("closed"), connection_invalidated=True)

    @app.get("/probe/database-bug")
    async def database_bug() -> None:
        raise DBAPIError("SELECT secret FROM nowhere", {}, ValueError("bad"))

    @app.post("/probe/echo")
    async def echo(payload: Payload) -> Payload:
        return payload

    @app.get("/probe/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def probe(probe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["type"] == "about:blank"
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/no-such-thing"), 404, "not_found")


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/health"), 405, "method_not_allowed")


async def test_validation_error_lists_errors_without_input(probe: httpx.AsyncClient) -> None:
    response = await probe.post("/probe/echo", json={"name": "x", "count": "many-secret"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [
        {"loc": ["body", "count"], "msg": body["errors"][0]["msg"], "type": "int_parsing"}
    ]
    assert "many-secret" not in response.text


async def test_bad_path_parameter_is_422(probe: httpx.AsyncClient) -> None:
    assert_problem(await probe.get("/probe/items/abc"), 422, "validation_error")


async def test_malformed_json_is_400(probe: httpx.AsyncClient) -> None:
    response = await probe.post(
        "/probe/echo", content=b'{"name": "x", ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_request")


async def test_wrong_content_type_is_a_problem_not_500(probe: httpx.AsyncClient) -> None:
    response = await probe.post(
        "/probe/echo", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code in (400, 415, 422)
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_unhandled_error_is_500_with_only_the_request_id(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/probe/boom", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "trace-500"
    assert "secret" not in response.text
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text


async def test_connection_lost_under_a_request_is_503(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/probe/connection-lost")
    assert_problem(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == "5"


async def test_other_database_errors_are_500_without_the_sql(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/probe/database-bug")
    assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_request_id_is_generated_when_missing_or_unsafe(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    assert len(unsafe.headers["x-request-id"]) == 32
