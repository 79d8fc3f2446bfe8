"""Imported into a worker subprocess (`dossier worker --import
tests.support.slow_storage`) to hold its jobs in the middle of their storage
I/O, so that a test can SIGKILL the worker there. With `SLOW_STORAGE_SECONDS`
set, every chunk read from or written to local storage waits that long after
passing, and the file `SLOW_STORAGE_MARKER` is created once the first chunk
has passed (the job is then mid-read or mid-write)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

from backend.kit.storage.local import LocalStorage

DELAY = float(os.environ.get("SLOW_STORAGE_SECONDS", "0"))
MARKER = os.environ.get("SLOW_STORAGE_MARKER")


async def _slowed(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk
        if MARKER:
            await asyncio.to_thread(Path(MARKER).touch)
        await asyncio.sleep(DELAY)


if DELAY > 0:
    _put_stream = LocalStorage.put_stream
    _open_range = LocalStorage.open_range

    async def put_stream(self: LocalStorage, key: str, chunks: Any, **options: Any) -> Any:
        return await _put_stream(self, key, _slowed(chunks), **options)

    def open_range(self: LocalStorage, *args: Any, **options: Any) -> AsyncIterator[bytes]:
        return _slowed(_open_range(self, *args, **options))

    LocalStorage.put_stream = put_stream  # type: ignore[method-assign]
    LocalStorage.open_range = open_range  # type: ignore[method-assign,assignment]
