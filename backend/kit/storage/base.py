"""The storage interface every backend implements (see the package docstring)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

# Keys are built by the application from ids, never from client input:
# lowercase path segments of safe characters, no `..`, no leading slash.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

# Reads (downloads among them) come in pieces of this size. Measured with the
# bench (a 100 MB download from local storage, one worker-thread read per
# piece): 1 MiB pieces cost the server 0.05-0.07 s of CPU and 128 KiB ones
# 0.12-0.19 s, and curl received 1 MiB pieces 1.6x faster. (httpx, itself the
# bottleneck at 300-600 MB/s, showed no clear difference either way.)
DEFAULT_CHUNK_SIZE = 1024 * 1024


class StorageError(RuntimeError):
    """A backend failed (I/O error, unreachable service)."""


class BlobNotFound(StorageError):
    """No committed object under this key."""


def check_key(key: str) -> str:
    segments = key.split("/")
    if not key or len(key) > 500 or not all(_SEGMENT.match(part) for part in segments):
        raise ValueError(f"invalid storage key {key!r}")
    if any(part in (".", "..") for part in segments):
        raise ValueError(f"invalid storage key {key!r}")
    return key


@dataclass(slots=True)
class StagedObject:
    """Bytes written under a temporary name, not yet visible under `key`.

    `commit` makes them visible; `discard` throws them away. `sha256` is the
    hex digest of the bytes written, computed by the backend as it writes.
    `stored`: the bytes are already visible under `key` (an object a client
    sent straight to storage, adopted after checking): `commit` leaves it,
    `discard` deletes it.
    """

    key: str
    size: int
    content_type: str | None = None
    sha256: str = ""
    token: Any = None  # backend-specific: a temporary path, an S3 multipart upload id
    parts: list[dict[str, Any]] = field(default_factory=list)
    stored: bool = False


class Storage(ABC):
    """A flat namespace of immutable blobs addressed by keys."""

    name: str = "abstract"

    @abstractmethod
    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> StagedObject:
        """Write `chunks` to a temporary object and hash them (sha256). If
        `chunks` raises, the temporary object is removed and the error
        propagates."""

    @abstractmethod
    async def commit(self, staged: StagedObject) -> None:
        """Make a staged object visible under its key (replacing any object there)."""

    @abstractmethod
    async def discard(self, staged: StagedObject) -> None:
        """Remove a staged object that will never be committed."""

    @abstractmethod
    def open_range(
        self, key: str, start: int = 0, end: int | None = None, *, chunk_size: int = ...
    ) -> AsyncIterator[bytes]:
        """Stream bytes `start`..`end` (inclusive; `None`: to the end) of a
        committed object. Raises `BlobNotFound` on the first iteration."""

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The size of a committed object, or None when there is none."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove a committed object; a missing key is not an error."""

    @abstractmethod
    async def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove staged writes older than this, left behind by a process
        that died between writing and committing; how many were removed."""

    async def read_bytes(self, key: str) -> bytes:
        """A whole (small) object in memory."""
        return b"".join([chunk async for chunk in self.open_range(key)])

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None
    ) -> StagedObject:
        async def once() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, once(), content_type=content_type)

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""
