"""PostgreSQL restarted while 50 clients upload and list documents against a
real `dossier serve` process: no 500 (503 while it is away), no half-written
document (a row without its blob or a blob without its row), and full
service within 5 s of PostgreSQL being back. The restart is a loopback proxy
in front of the test PostgreSQL cut and reopened (the shared server is never
touched)."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.kit.storage import get_storage
from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.support.server import clean_env, serving
from tests.support.tcp_proxy import TcpProxy

CLIENTS = 50
WARM_UP_DEADLINE_SECONDS = 20.0
OUTAGE_SECONDS = 3.0
RECOVERY_SECONDS = 5.0
AFTER_SECONDS = 3.0


class _Server:
    """`serving(...)` entered and left off the event loop (the proxy it
    reaches PostgreSQL through runs on that loop), its output drained so a
    burst of log lines cannot block it."""

    def __init__(self, env: dict[str, str]) -> None:
        self._context = serving(env)
        self.output: list[str] = []
        self.base = ""

    async def __aenter__(self) -> str:
        self.base, process = await asyncio.to_thread(self._context.__enter__)
        stream = process.stdout
        assert stream is not None
        threading.Thread(target=lambda: self.output.extend(stream), daemon=True).start()
        return self.base

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._context.__exit__, None, None, None)


async def _client(
    base: str,
    headers: dict[str, str],
    number: int,
    stop: asyncio.Event,
    answers: list[tuple[float, float, str, int]],
    created: dict[str, str],
) -> None:
    """Upload a small unique text, then list, until told to stop; every
    answer as (started, ended, kind, status), 0 for a transport error."""
    sequence = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=15) as http:
        while not stop.is_set():
            sequence += 1
            content = f"client {number} file {sequence} {time.time_ns()}\n".encode() * 20
            for kind in ("upload", "list"):
                started = time.monotonic()
                try:
                    if kind == "upload":
                        response = await http.post(
                            "/api/v1/documents",
                            files={"file": (f"c{number}-{sequence}.txt", content, "text/plain")},
                        )
                        if response.status_code == 201:
                            created[response.json()["id"]] = hashlib.sha256(content).hexdigest()
                    else:
                        response = await http.get("/api/v1/documents", params={"limit": 20})
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                answers.append((started, time.monotonic(), kind, status))
            await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_postgres_restart_under_50_clients(
    app: Any, settings: Settings, database_url: str, redis_url: str, owner_engine: Any
) -> None:
    url = make_url(database_url)
    if not url.host:
        pytest.skip("the test PostgreSQL listens on a Unix socket only")
    proxy = TcpProxy(url.host, url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    env = clean_env(
        DATABASE_URL=proxied,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        DOSSIER_DATA_DIR=str(settings.dossier_data_dir),
        LOG_LEVEL="WARNING",
        RATE_LIMIT_DEFAULT="1000000/60",
    )
    tenant = await make_tenant(app, "Restarted")
    headers = bearer_headers(app, tenant.owner)
    answers: list[tuple[float, float, str, int]] = []
    created: dict[str, str] = {}
    server = _Server(env)
    try:
        base = await server.__aenter__()
        stop = asyncio.Event()
        clients = [
            asyncio.create_task(_client(base, headers, n, stop, answers, created))
            for n in range(CLIENTS)
        ]
        # Serving first: enough uploads and lists answered before the cut.
        deadline = time.monotonic() + WARM_UP_DEADLINE_SECONDS
        while sum(1 for *_, status in answers if status in (200, 201)) < CLIENTS:
            assert time.monotonic() < deadline, collections.Counter(a[3] for a in answers)
            await asyncio.sleep(0.1)
        down_at = time.monotonic()
        await proxy.stop()
        await asyncio.sleep(OUTAGE_SECONDS)
        await proxy.start()
        back_at = time.monotonic()
        await asyncio.sleep(RECOVERY_SECONDS + AFTER_SECONDS)
        stop.set()
        await asyncio.gather(*clients)
    finally:
        await server.__aexit__()
        await proxy.stop()

    by_phase: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for started, ended, kind, status in answers:
        phase = (
            "before"
            if ended < down_at
            else "outage"
            if started < back_at
            else "recovery"
            if started < back_at + RECOVERY_SECONDS
            else "after"
        )
        by_phase[phase][f"{kind} {status}"] += 1
    print(
        f"\nPostgreSQL restart under {CLIENTS} clients:", {k: dict(v) for k, v in by_phase.items()}
    )
    statuses = collections.Counter(status for *_, status in answers)
    assert not [s for s in statuses if s >= 500 and s != 503], (statuses, server.output[-40:])
    assert statuses[0] == 0, "a connection was dropped"
    assert by_phase["before"]["upload 201"] > 0
    assert by_phase["before"]["list 200"] > 0
    assert statuses[503] > 0, "the outage was not noticed"
    after = by_phase["after"]
    assert after["upload 201"] > 0
    assert after["list 200"] > 0
    assert set(after) == {"upload 201", "list 200"}, after
    # Full service: the last request that failed after PostgreSQL came back
    # started within RECOVERY_SECONDS of it.
    failed_since = [
        started - back_at
        for started, _, _, status in answers
        if started >= back_at and status not in (200, 201)
    ]
    recovered_in = max(failed_since, default=0.0)
    print(f"full service {recovered_in:.2f} s after PostgreSQL was back")
    assert recovered_in < RECOVERY_SECONDS

    async with owner_engine.connect() as connection:
        rows = {
            str(row.id): row
            for row in await connection.execute(
                text("SELECT id, storage_key, size, sha256 FROM documents WHERE tenant_id = :t"),
                {"t": tenant.id},
            )
        }
    from_storage = _tenant_blobs(app, tenant.id)
    keys = {row.storage_key: row for row in rows.values()}
    assert set(created) <= set(rows), "a 201 document has no row"
    assert set(keys) == set(from_storage), (
        f"rows without blobs: {set(keys) - set(from_storage)}; "
        f"blobs without rows: {set(from_storage) - set(keys)}"
    )
    for key, row in keys.items():
        assert from_storage[key] == row.size
    for document_id, digest in created.items():
        assert rows[document_id].sha256 == digest
    print(f"{len(rows)} documents, each with its blob")


def _tenant_blobs(app: Any, tenant_id: Any) -> dict[str, int]:
    root: Path = get_storage(app.state.settings).root  # type: ignore[attr-defined]
    folder = root / "tenants" / str(tenant_id) / "documents"
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(root)): path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file()
    }
