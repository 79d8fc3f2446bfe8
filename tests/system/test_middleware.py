"""Client addresses behind proxies, CORS and compression."""

from __future__ import annotations

import logging
from ipaddress import ip_network
from typing import Any

import httpx
import pytest

from backend.kit.middleware import client_address
from backend.main import create_app
from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant

TRUSTED = [ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: header ignored
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # spoofed left part
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", "198.51.100.7"),  # chain of proxies
        ("127.0.0.1", "not-an-ip", "not-an-ip"),
        ("127.0.0.1", "", "127.0.0.1"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, forwarded: str | None, expected: str
) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


async def test_cors_preflight_allows_configured_origin(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_origins": ["https://app.example"]}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        allowed = await http.options(
            "/health",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        refused = await http.options(
            "/health",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_large_answers_are_gzipped(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"


async def test_metrics_and_access_log_name_the_full_route_template(
    client: httpx.AsyncClient, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    with caplog.at_level(logging.INFO, logger="dossier.access"):
        response = await client.get(f"/api/v1/users/{tenant.owner.id}", headers=headers)
    assert response.status_code == 200
    logged = [record for record in caplog.records if record.name == "dossier.access"]
    assert [getattr(record, "route", None) for record in logged] == ["/api/v1/users/{user_id}"]
    metrics = (await client.get("/metrics")).text
    assert (
        'dossier_http_requests_total{method="GET",route="/api/v1/users/{user_id}",status="200"}'
        in metrics
    )
    assert (await client.get("/no/such/route")).status_code == 404
    assert 'route="unmatched",status="404"' in (await client.get("/metrics")).text
