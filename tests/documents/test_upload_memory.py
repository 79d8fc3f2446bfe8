"""The memory proof: a 200 MB upload through a real server process keeps
the server's peak RSS growth under 64 MB (the body is streamed, never held)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import bearer_headers, make_tenant
from tests.support.memory import PeakSampler
from tests.support.server import clean_env, serving

SIZE = 200 * 1024 * 1024
BOUNDARY = "dossier-memory-proof"
MB = 1024 * 1024


def _body(block: bytes, digest: Any) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    sent = 0
    first = True
    while sent < SIZE:
        chunk = block[: SIZE - sent]
        if first:
            chunk = b"%PDF-1.7\n" + chunk[9:]
            first = False
        digest.update(chunk)
        sent += len(chunk)
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _upload_through_server(
    env: dict[str, str], headers: dict[str, str]
) -> tuple[httpx.Response, int, str]:
    """Blocking: the server subprocess, a warm-up, then the streamed upload
    while a thread samples the server's RSS."""
    with (
        serving(env) as (base, process),
        httpx.Client(base_url=base, headers=headers, timeout=120) as http,
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
            content=_body(os.urandom(MB), digest),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        sampler.running = False
        sampler.join()
    return answer, sampler.peak - baseline, digest.hexdigest()


@pytest.mark.slow
async def test_200_mb_upload_keeps_peak_rss_growth_under_64_mb(
    app: Any, settings: Any, redis_url: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    env = clean_env(
        DATABASE_URL=settings.database_url.get_secret_value(),
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        DOSSIER_DATA_DIR=str(tmp_path),
        MAX_UPLOAD_BYTES=str(300 * MB),
        LOG_LEVEL="WARNING",
    )
    answer, growth, expected = await asyncio.to_thread(_upload_through_server, env, headers)
    assert answer.status_code == 201, answer.text
    assert answer.json()["size"] == SIZE
    assert answer.json()["sha256"] == expected
    print(f"\npeak RSS growth during a 200 MB upload: {growth / MB:.1f} MB")
    assert growth < 64 * MB
