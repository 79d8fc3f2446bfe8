"""Blobs as files under a directory (default: `DOSSIER_DATA_DIR/blobs`).

A write goes to `<root>/.staging/<random>` (hashed and written by a worker
thread while the next bytes arrive) and is fsynced; `commit` renames it
into place atomically (same filesystem) and fsyncs the directory, so a blob
is either wholly there under its key or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from backend.kit.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobNotFound,
    StagedObject,
    Storage,
    check_key,
)

# The stream is handed to a worker thread in batches of this size; the thread
# hashes and writes one batch while the event loop receives the next, so the
# two overlap and memory holds at most two batches.
_BATCH = 4 * 1024 * 1024
# `os.writev` takes at most IOV_MAX (1024 on Linux) buffers per call.
_MAX_BUFFERS = 512

Buffer = bytes | memoryview


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _StagingFile:
    """A staging file written from worker threads, one batch at a time.

    The lock orders a batch's write against `abandon`, so a batch queued
    before an error can never write to a closed (or reused) descriptor.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "xb", buffering=0)  # noqa: SIM115 - closed by finish/abandon
        self.digest = hashlib.sha256()
        self.lock = threading.Lock()

    def write(self, batch: list[bytes]) -> None:
        with self.lock:
            if self.handle.closed:
                return
            for chunk in batch:
                self.digest.update(chunk)
            fd = self.handle.fileno()
            for start in range(0, len(batch), _MAX_BUFFERS):
                pending: Sequence[Buffer] = batch[start : start + _MAX_BUFFERS]
                while pending:
                    written = os.writev(fd, pending)
                    pending = _after(pending, written)

    def finish(self, batch: list[bytes]) -> str:
        """Write the last batch, fsync, close; the sha256 of everything written."""
        self.write(batch)
        with self.lock:
            os.fsync(self.handle.fileno())
            self.handle.close()
        return self.digest.hexdigest()

    def abandon(self) -> None:
        with self.lock:
            self.handle.close()
            self.path.unlink(missing_ok=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failed batch's error as seen; the stream's own error is raised."""
    if not future.cancelled():
        future.exception()


def _after(buffers: Sequence[Buffer], written: int) -> list[Buffer]:
    """What is left of `buffers` once `written` bytes of them are written."""
    for index, buffer in enumerate(buffers):
        if written < len(buffer):
            return [memoryview(buffer)[written:], *buffers[index + 1 :]]
        written -= len(buffer)
    return []


class LocalStorage(Storage):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / ".staging"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _create_staging_file(self) -> _StagingFile:
        self.staging.mkdir(parents=True, exist_ok=True)
        return _StagingFile(self.staging / secrets.token_hex(16))

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> StagedObject:
        check_key(key)
        loop = asyncio.get_running_loop()
        file = await loop.run_in_executor(None, self._create_staging_file)
        size = 0
        batch: list[bytes] = []
        batched = 0
        writing: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                batch.append(chunk)
                batched += len(chunk)
                if batched >= _BATCH:
                    if writing is not None:
                        await writing
                    writing = loop.run_in_executor(None, file.write, batch)
                    size += batched
                    batch, batched = [], 0
            if writing is not None:
                await writing
            size += batched
            sha256 = await loop.run_in_executor(None, file.finish, batch)
        except BaseException:
            if writing is not None:
                writing.add_done_callback(_retrieve)
            await asyncio.to_thread(file.abandon)
            raise
        return StagedObject(
            key=key, size=size, content_type=content_type, sha256=sha256, token=str(file.path)
        )

    async def commit(self, staged: StagedObject) -> None:
        await asyncio.to_thread(self._commit, staged)

    def _commit(self, staged: StagedObject) -> None:
        target = self.path(staged.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.token, target)
        _fsync_dir(target.parent)

    async def discard(self, staged: StagedObject) -> None:
        await asyncio.to_thread(Path(staged.token).unlink, missing_ok=True)

    async def open_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            handle: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            if start:
                await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                data = await asyncio.to_thread(handle.read, want)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, self.path(key))).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove staged files left behind by a crash between write and commit."""
        return await asyncio.to_thread(self._sweep, older_than_seconds)

    def _sweep(self, older_than_seconds: float) -> int:
        import time

        if not self.staging.exists():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in self.staging.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
