"""The memory proof: a 200 MB upload through a real server process keeps
the server's peak RSS growth under 64 MB (the body is streamed, never held)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.memory import MB, upload_rss_growth

SIZE = 200 * 1024 * 1024


def _pdf(block: bytes) -> Iterator[bytes]:
    sent = 0
    first = True
    while sent < SIZE:
        chunk = block[: SIZE - sent]
        if first:
            chunk = b"%PDF-1.7\n" + chunk[9:]
            first = False
        sent += len(chunk)
        yield chunk


@pytest.mark.slow
async def test_200_mb_upload_keeps_peak_rss_growth_under_64_mb(app: Any, tmp_path: Path) -> None:
    file = ("big.pdf", _pdf(os.urandom(MB)), "application/pdf")
    answer, growth, expected = await upload_rss_growth(app, tmp_path, file, client_timeout=120)
    assert answer.status_code == 201, answer.text
    assert answer.json()["size"] == SIZE
    assert answer.json()["sha256"] == expected
    print(f"\npeak RSS growth during a 200 MB upload: {growth / MB:.1f} MB")
    assert growth < 64 * MB
