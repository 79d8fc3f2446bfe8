"""The list parameters: defaults, limits and refusals (422 problem+json)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest

from backend.kit.pagination import ListQuery, list_query
from backend.main import create_app
from backend.settings import Settings


@pytest.fixture(scope="module")
async def probe(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)

    @app.get("/probe/list")
    async def listing(
        query: Annotated[ListQuery, list_query(["created_at", "title"])],
    ) -> dict[str, Any]:
        return {
            "sort": str(query.sort),
            "keyset": query.keyset,
            "page": query.page,
            "page_size": query.page_size,
        }

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def test_defaults_are_page_one_of_twenty(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/probe/list")
    assert response.json() == {"sort": "-created_at", "keyset": False, "page": 1, "page_size": 20}


async def test_limit_selects_keyset(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/probe/list", params={"limit": 5, "sort": "title"})
    assert response.json() == {"sort": "title", "keyset": True, "page": 1, "page_size": 5}


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 101},
        {"limit": 101},
        {"limit": 0},
        {"page": 0},
        {"sort": "password_hash"},
        {"page": 2, "limit": 5},
        {"cursor": "not-a-cursor"},
    ],
)
async def test_bad_list_parameters_are_422(
    probe: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await probe.get("/probe/list", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"]
