"""A 200 MB binary STL upload through a real server process: typed by
content (the size check needs the whole stream) without the server's RSS
growing by more than 64 MB, as for any upload."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.factories import bearer_headers, make_tenant
from tests.support.memory import PeakSampler
from tests.support.server import clean_env, serving

MB = 1024 * 1024
TRIANGLES = 4_194_302  # 84 + 50 * n = 209,715,184 bytes
BOUNDARY = "dossier-stl-memory-proof"


def _body(digest: Any) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="jaw.stl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    header = b"binary STL memory proof".ljust(80, b" ") + struct.pack("<I", TRIANGLES)
    digest.update(header)
    yield header
    per_block = 20_000
    records = np.zeros(per_block, dtype=[("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
    records["v"] = np.random.default_rng(0).random((per_block, 9), dtype=np.float32)
    block = records.tobytes()
    left = TRIANGLES
    while left:
        count = min(per_block, left)
        chunk = block[: count * 50]
        digest.update(chunk)
        left -= count
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _upload(env: dict[str, str], headers: dict[str, str]) -> tuple[httpx.Response, int, str]:
    with (
        serving(env) as (base, process),
        httpx.Client(base_url=base, headers=headers, timeout=300) as http,
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
            content=_body(digest),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        sampler.running = False
        sampler.join()
    return answer, sampler.peak - baseline, digest.hexdigest()


@pytest.mark.slow
async def test_200_mb_stl_upload_keeps_peak_rss_growth_under_64_mb(
    app: Any, settings: Any, redis_url: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    env = clean_env(
        DATABASE_URL=settings.database_url.get_secret_value(),
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        ENVIRONMENT="test",
        DOSSIER_DATA_DIR=str(tmp_path),
        MAX_UPLOAD_BYTES=str(300 * MB),
        LOG_LEVEL="WARNING",
    )
    answer, growth, expected = await asyncio.to_thread(_upload, env, headers)
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert document["mime_type"] == "model/stl"
    assert document["size"] == 84 + 50 * TRIANGLES
    assert document["sha256"] == expected
    print(f"\npeak RSS growth during a 200 MB STL upload: {growth / MB:.1f} MB")
    assert growth < 64 * MB
