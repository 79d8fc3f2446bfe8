"""Blob storage: one small interface, a local-filesystem backend and an
S3-compatible backend, chosen by `STORAGE_BACKEND` (`local` | `s3`).

The interface (`Storage`, in `base.py`) is generic — keys, byte streams,
content types — so documents, upload parts and job artifacts all use it:

* `put_stream(key, chunks, content_type=)` writes an async stream of bytes to
  a *temporary* object and returns a `StagedObject` (key, size, sha256). Nothing is
  visible under `key` yet. If the stream raises, the temporary object is
  removed and the error propagates.
* `commit(staged)` makes it visible under its key (atomic rename on disk,
  `CompleteMultipartUpload` on S3); `discard(staged)` throws it away.
* `open_range(key, start, end)` streams a committed object (inclusive byte
  range, `end=None` for the rest); `size(key)`; `delete(key)`;
  `read_bytes`/`put_bytes` for small objects.

Keys are made by the application from ids (`key_for(...)`), never from
client-supplied names; `check_key` refuses anything else.

Transactions: blobs must follow the database. Use the helpers here rather
than calling `commit`/`delete` directly from a request:

* `commit_after_commit(session, storage, staged)` — the staged object becomes
  visible only once the session's transaction commits; if it rolls back the
  staged object is discarded, so a rolled-back upload leaves no blob. When
  COMMIT itself fails (the connection dropped, PostgreSQL may have
  committed), the database is asked what became of the transaction before
  either is done (`backend.kit.db.on_outcome`): a committed row always has
  its blob, a rolled-back one never leaves one.
* `delete_after_commit(session, storage, key)` — a purged row's blob goes
  only after the purge is committed.

`get_storage(settings)` returns the process-wide backend for the settings;
`configure_storage(settings)` (called at start-up) makes it the one
`active_storage()` returns to code that has no settings at hand (purgers);
`release_storage` undoes it when the app stops. A second app in the same
process (tests, embedded tools) stacks its storage on the first one's and
gives it back; the last app to stop closes every backend.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import on_outcome
from backend.kit.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobNotFound,
    StagedObject,
    Storage,
    StorageError,
    check_key,
)
from backend.kit.storage.local import LocalStorage
from backend.kit.storage.s3 import S3Storage
from backend.settings import Settings, get_settings

logger = logging.getLogger("dossier.storage")

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BlobNotFound",
    "LocalStorage",
    "S3Storage",
    "StagedObject",
    "Storage",
    "StorageError",
    "active_storage",
    "check_key",
    "close_storages",
    "commit_after_commit",
    "configure_storage",
    "delete_after_commit",
    "get_storage",
    "key_for",
    "release_storage",
]

_STAGED = "storage_staged"
_storages: dict[tuple[Any, ...], Storage] = {}


def key_for(*parts: object) -> str:
    """A storage key from ids: `key_for("tenants", tenant_id, "documents", doc_id)`."""
    return check_key("/".join(str(part) for part in parts))


def get_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        if not settings.s3_bucket:
            raise RuntimeError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        secret = settings.s3_secret_access_key
        identity: tuple[Any, ...] = (
            "s3",
            settings.s3_endpoint_url,
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_access_key_id,
        )
        if identity not in _storages:
            _storages[identity] = S3Storage(
                bucket=settings.s3_bucket,
                endpoint_url=settings.s3_endpoint_url or None,
                region=settings.s3_region or None,
                access_key_id=settings.s3_access_key_id or None,
                secret_access_key=(secret.get_secret_value() or None) if secret else None,
                prefix=settings.s3_prefix,
            )
        return _storages[identity]
    if settings.storage_backend != "local":
        raise RuntimeError(f"unknown STORAGE_BACKEND {settings.storage_backend!r}")
    root = (settings.dossier_data_dir / "blobs").resolve()
    identity = ("local", str(root))
    if identity not in _storages:
        _storages[identity] = LocalStorage(root)
    return _storages[identity]


_active: list[Storage] = []


def configure_storage(settings: Settings) -> Storage:
    storage = get_storage(settings)
    _active.append(storage)
    return storage


async def release_storage(storage: Storage) -> None:
    if storage in _active:
        del _active[len(_active) - 1 - _active[::-1].index(storage)]
    if not _active:
        await close_storages()


def active_storage() -> Storage:
    if not _active:
        return configure_storage(get_settings())
    return _active[-1]


async def close_storages() -> None:
    for storage in list(_storages.values()):
        await storage.close()
    _storages.clear()
    _active.clear()


def commit_after_commit(session: AsyncSession, storage: Storage, staged: StagedObject) -> None:
    """Make `staged` visible once `session` commits; discard it otherwise."""
    session.info.setdefault(_STAGED, []).append(staged)

    def pending() -> bool:
        return any(item is staged for item in session.info.get(_STAGED, []))

    async def commit() -> None:
        if pending():
            await storage.commit(staged)

    async def discard() -> None:
        if pending():
            await _discard(storage, staged)

    on_outcome(session, committed=commit, rolled_back=discard)


def delete_after_commit(session: AsyncSession, storage: Storage, key: str) -> None:
    async def delete() -> None:
        await storage.delete(key)

    on_outcome(session, committed=delete)


async def discard_now(session: AsyncSession, storage: Storage, staged: StagedObject) -> None:
    """Drop a staged object at once (the caller refused it) and forget it."""
    pending = session.info.get(_STAGED, [])
    session.info[_STAGED] = [item for item in pending if item is not staged]
    await storage.discard(staged)


async def _discard(storage: Storage, staged: StagedObject) -> None:
    try:
        await storage.discard(staged)
    except Exception:
        logger.exception("discarding a staged blob failed", extra={"key": staged.key})


async def sweep_staged_blobs(session: AsyncSession, settings: Settings) -> int:
    """The maintenance task for staged writes that never became blobs."""
    return await get_storage(settings).sweep_staging(settings.staging_max_age_seconds)
