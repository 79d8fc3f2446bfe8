"""Peak RSS of a server process and its children, sampled in a thread, and
the upload memory proof built on it."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.factories import bearer_headers, make_tenant
from tests.support.server import clean_env, serving

MB = 1024 * 1024


class PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def rss(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running())

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)


Body = Callable[[Any], Iterator[bytes]]


def _upload_through_server(
    env: dict[str, str], headers: dict[str, str], body: Body, boundary: str, timeout: float
) -> tuple[httpx.Response, int, str]:
    """Blocking: the server subprocess, a warm-up, then the streamed upload
    while a thread samples the server's RSS."""
    with (
        serving(env) as (base, process),
        httpx.Client(base_url=base, headers=headers, timeout=timeout) as http,
    ):
        warm = http.post(
            "/api/v1/documents",
            files={"file": ("warm.pdf", b"%PDF-1.4 warm-up", "application/pdf")},
        )
        assert warm.status_code == 201, warm.text
        sampler = PeakSampler(process.pid)
        baseline = sampler.rss()
        sampler.start()
        digest = hashlib.sha256()
        answer = http.post(
            "/api/v1/documents",
            content=body(digest),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        sampler.running = False
        sampler.join()
    return answer, sampler.peak - baseline, digest.hexdigest()


async def upload_rss_growth(
    app: Any,
    settings: Any,
    redis_url: str,
    data_dir: Path,
    body: Body,
    boundary: str,
    *,
    client_timeout: float,
    **env: str,
) -> tuple[httpx.Response, int, str]:
    """A new tenant's owner uploads the multipart `body(digest)` (which feeds
    what it yields to `digest`) to a real server process allowing 300 MB
    uploads, `env` added to its environment: the answer, the server's peak RSS
    growth over its warmed-up baseline, and the body's SHA-256."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    server_env = clean_env(
        DATABASE_URL=settings.database_url.get_secret_value(),
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        DOSSIER_DATA_DIR=str(data_dir),
        MAX_UPLOAD_BYTES=str(300 * MB),
        LOG_LEVEL="WARNING",
        **env,
    )
    return await asyncio.to_thread(
        _upload_through_server, server_env, headers, body, boundary, client_timeout
    )
