"""Peak RSS of a server process and its children, sampled in a thread, and
the upload memory proof built on it."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.factories import bearer_headers, make_tenant
from tests.support.server import clean_env, serving

MB = 1024 * 1024
BOUNDARY = "dossier-memory-proof"


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


# As httpx's `files` values: the file's name, its content (streamed), its type.
StreamedFile = tuple[str, Iterable[bytes], str]


def _multipart(file: StreamedFile, digest: Any) -> Iterator[bytes]:
    """The one-part form `file=...`, its content fed to `digest` on the way."""
    name, content, content_type = file
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    for chunk in content:
        digest.update(chunk)
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _upload_through_server(
    env: dict[str, str], headers: dict[str, str], file: StreamedFile, timeout: float
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
            content=_multipart(file, digest),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        sampler.running = False
        sampler.join()
    return answer, sampler.peak - baseline, digest.hexdigest()


async def upload_rss_growth(
    app: Any, data_dir: Path, file: StreamedFile, *, client_timeout: float, **env: str
) -> tuple[httpx.Response, int, str]:
    """A new tenant's owner uploads `file`, streamed as a multipart form, to a
    real server process on `app`'s database and Redis that allows 300 MB
    uploads, `env` added to its environment: the answer, the server's peak
    RSS growth over its warmed-up baseline, and the file content's SHA-256."""
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    settings = app.state.settings
    server_env = clean_env(
        DATABASE_URL=settings.database_url.get_secret_value(),
        REDIS_URL=settings.redis_url.get_secret_value(),
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        DOSSIER_DATA_DIR=str(data_dir),
        MAX_UPLOAD_BYTES=str(300 * MB),
        LOG_LEVEL="WARNING",
        **env,
    )
    return await asyncio.to_thread(
        _upload_through_server, server_env, headers, file, client_timeout
    )
