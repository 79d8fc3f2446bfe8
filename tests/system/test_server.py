"""`dossier serve` as a real process: configured services, and the embedded
default when nothing is configured."""

from __future__ import annotations

import re
import socket
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jobs.helpers import pdf_with_pages
from tests.support.server import clean_env, serving, unconfigured_env

DEMO = re.compile(r"Log in as (?P<email>\S+) with password (?P<password>\S+)")


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


def _demo_credentials(process: subprocess.Popen[str]) -> tuple[str, str]:
    """The demo owner's login, from what `dossier serve` printed before serving."""
    assert process.stdout is not None
    printed = []
    while not printed or not printed[-1].startswith("Serving on"):
        printed.append(process.stdout.readline())
        assert printed[-1], "".join(printed)
    match = next((DEMO.search(line) for line in printed if DEMO.search(line)), None)
    assert match, "".join(printed)
    return match["email"], match["password"]


def _wait_processed(base: str, headers: dict[str, str], document_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        document = httpx.get(
            f"{base}/api/v1/documents/{document_id}", headers=headers, timeout=10
        ).json()
        if document["status"] in ("processed", "failed"):
            return dict(document)
        time.sleep(0.3)
    raise AssertionError(f"document still {document['status']}")


@pytest.mark.slow
def test_readme_first_command_processes_an_upload_and_reuses_its_data(tmp_path: Path) -> None:
    """`dossier serve` with nothing configured (the README's first command):
    embedded PostgreSQL and Redis, a demo tenant, generated secrets, and a job
    worker in the process, so an uploaded PDF ends `processed`. A second start
    reuses the data and the secrets."""
    data = tmp_path / "data"
    env = unconfigured_env(DOSSIER_DATA_DIR=str(data))
    with serving(env) as (base, process):
        email, password = _demo_credentials(process)
        login = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": email, "password": password},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        pdf = pdf_with_pages("Quarterly report for the board")
        upload = httpx.post(
            f"{base}/api/v1/documents",
            headers=headers,
            files={"file": ("report.pdf", pdf, "application/pdf")},
            timeout=30,
        )
        assert upload.status_code == 201, upload.text
        document = _wait_processed(base, headers, upload.json()["id"])
        assert document["status"] == "processed", document
        found = httpx.get(
            f"{base}/api/v1/documents", params={"q": "quarterly board"}, headers=headers
        )
        assert [item["id"] for item in found.json()["items"]] == [document["id"]]
    first_output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in first_output

    stored = {path.name: path.read_text() for path in (data / "secrets").iterdir()}
    assert sorted(stored) == ["api_key_pepper", "jwt_secret", "signing_secret"]
    assert all(stat.S_IMODE((data / "secrets" / name).stat().st_mode) == 0o600 for name in stored)

    with serving(env) as (base, process):
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
        # The first run's token still holds: same data, same JWT secret.
        me = httpx.get(f"{base}/api/v1/auth/me", headers=headers, timeout=10)
        assert me.status_code == 200, me.text
    second_output = process.stdout.read() if process.stdout else ""
    assert "Embedded PostgreSQL" in second_output
    assert "Demo tenant created" not in second_output
    assert {path.name: path.read_text() for path in (data / "secrets").iterdir()} == stored
