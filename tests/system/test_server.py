"""`dossier serve` as a real process: configured services, and the embedded
default when nothing is configured."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tests.support.server import clean_env, serving


async def test_serve_with_configured_services(
    create_database: Callable[[], Awaitable[str]], redis_url: str
) -> None:
    url = await create_database()
    with serving(clean_env(DATABASE_URL=url, REDIS_URL=redis_url)) as (base, _):
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.status_code == 200
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert (
            'dossier_http_requests_total{method="GET",route="/ready",status="200"}' in metrics.text
        )
        assert "dossier_db_pool_connections" in metrics.text
        docs = httpx.get(f"{base}/docs", timeout=5)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()


async def test_oversized_header_is_refused_by_the_server(
    create_database: Callable[[], Awaitable[str]], redis_url: str
) -> None:
    url = await create_database()
    with serving(clean_env(DATABASE_URL=url, REDIS_URL=redis_url)) as (base, _):
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            huge = "x" * (256 * 1024)
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: {huge}\r\n\r\n".encode())
            answer = ""
            while '"code"' not in answer and (chunk := sock.recv(4096)):
                answer += chunk.decode(errors="replace")
        assert answer.startswith("HTTP/1.1 431"), answer[:80]
        assert "application/problem+json" in answer
        assert '"code":"headers_too_large"' in answer
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200


@pytest.mark.slow
def test_embedded_default_starts_migrates_and_reuses_data(tmp_path: Path) -> None:
    env = clean_env(DOSSIER_DATA_DIR=str(tmp_path / "data"))
    with serving(env) as (base, process):
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
    first_output = process.stdout.read() if process.stdout else ""
    assert "Embedded PostgreSQL" in first_output
    assert "Demo tenant created. Log in as owner@demo.dossier.local with password" in first_output

    with serving(env) as (base, process):
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
    second_output = process.stdout.read() if process.stdout else ""
    assert "Embedded PostgreSQL" in second_output
    assert "Demo tenant created" not in second_output
