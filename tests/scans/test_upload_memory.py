"""A 200 MB binary STL upload through a real server process: typed by
content (the size check needs the whole stream) without the server's RSS
growing by more than 64 MB, as for any upload."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.memory import MB, upload_rss_growth

TRIANGLES = 4_194_302  # 84 + 50 * n = 209,715,184 bytes


def _stl() -> Iterator[bytes]:
    yield b"binary STL memory proof".ljust(80, b" ") + struct.pack("<I", TRIANGLES)
    per_block = 20_000
    records = np.zeros(per_block, dtype=[("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
    records["v"] = np.random.default_rng(0).random((per_block, 9), dtype=np.float32)
    block = records.tobytes()
    left = TRIANGLES
    while left:
        count = min(per_block, left)
        left -= count
        yield block[: count * 50]


@pytest.mark.slow
async def test_200_mb_stl_upload_keeps_peak_rss_growth_under_64_mb(
    app: Any, tmp_path: Path
) -> None:
    file = ("jaw.stl", _stl(), "application/octet-stream")
    answer, growth, expected = await upload_rss_growth(
        app, tmp_path, file, client_timeout=300, ENVIRONMENT="test"
    )
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert document["mime_type"] == "model/stl"
    assert document["size"] == 84 + 50 * TRIANGLES
    assert document["sha256"] == expected
    print(f"\npeak RSS growth during a 200 MB STL upload: {growth / MB:.1f} MB")
    assert growth < 64 * MB
