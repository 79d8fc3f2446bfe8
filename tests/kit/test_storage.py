"""Storage backends: local filesystem and S3 (against moto's server on
loopback), and the commit-after-transaction helpers."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url

from backend.kit.db import Database
from backend.kit.storage import (
    BlobNotFound,
    LocalStorage,
    Storage,
    commit_after_commit,
    delete_after_commit,
    key_for,
)
from backend.settings import Settings
from tests.support.s3 import moto_endpoint, s3_storage
from tests.support.tcp_proxy import CommitCuttingProxy

__all__ = ["moto_endpoint"]  # the fixture, used through `storage`


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "blobs")
        return
    s3 = s3_storage(request.getfixturevalue("moto_endpoint"))
    await s3.ensure_bucket()
    yield s3
    await s3.close()


async def _chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_staged_object_is_invisible_until_commit(storage: Storage) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)  # spans two S3 parts
    key = key_for("tenants", "t1", "documents", "d1")
    staged = await storage.put_stream(key, _chunks(data), content_type="application/pdf")
    assert staged.size == len(data)
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert await storage.size(key) is None
    await storage.commit(staged)
    assert await storage.size(key) == len(data)
    read = await storage.read_bytes(key)
    assert hashlib.sha256(read).digest() == hashlib.sha256(data).digest()
    ranged = b"".join([chunk async for chunk in storage.open_range(key, 10, 1_000_009)])
    assert ranged == data[10:1_000_010]
    tail = b"".join([chunk async for chunk in storage.open_range(key, len(data) - 5)])
    assert tail == data[-5:]
    await storage.delete(key)
    assert await storage.size(key) is None
    await storage.delete(key)  # missing: not an error


async def test_maintenance_sweeps_only_stale_staged_writes(storage: Storage) -> None:
    """A write staged by a process that died before committing is removed
    once it is older than the cutoff; younger ones are left alone."""
    key = key_for("tenants", "t1", "documents", "abandoned")
    await storage.put_stream(key, _chunks(os.urandom(9 * 1024 * 1024)), content_type="text/plain")
    if isinstance(storage, LocalStorage):  # moto dates every multipart upload 2010-11-10
        assert await storage.sweep_staging(3600) == 0
    await asyncio.sleep(1.5)
    assert await storage.sweep_staging(1) == 1
    assert await storage.sweep_staging(1) == 0
    assert await storage.size(key) is None


async def test_discard_and_failing_stream_leave_nothing(storage: Storage) -> None:
    key = key_for("tenants", "t1", "documents", "d2")
    staged = await storage.put_bytes(key, b"hello")
    await storage.discard(staged)
    assert await storage.size(key) is None

    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("client went away")

    await _assert_failed_stream_leaves_nothing(storage, key, failing())


async def _assert_failed_stream_leaves_nothing(
    storage: Storage, key: str, stream: AsyncIterator[bytes]
) -> None:
    with pytest.raises(RuntimeError):
        await storage.put_stream(key, stream)
    assert await storage.size(key) is None
    if isinstance(storage, LocalStorage):
        assert list(storage.staging.iterdir()) == []


async def test_stream_failing_while_batches_are_written_leaves_nothing(storage: Storage) -> None:
    key = key_for("tenants", "t1", "documents", "d3")

    async def failing() -> AsyncIterator[bytes]:
        for _ in range(11):  # several write batches (and S3 parts) already on their way
            yield os.urandom(1 << 20)
        raise RuntimeError("client went away")

    await _assert_failed_stream_leaves_nothing(storage, key, failing())


async def test_empty_object_and_missing_key(storage: Storage) -> None:
    key = key_for("tenants", "t1", "empty")
    await storage.commit(await storage.put_bytes(key, b""))
    assert await storage.size(key) == 0
    assert await storage.read_bytes(key) == b""
    with pytest.raises(BlobNotFound):
        await storage.read_bytes(key_for("tenants", "t1", "missing"))


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "/abs", "a//b", "a/../b", "a b", "x/.hidden"])
def test_keys_from_client_input_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        key_for(bad)


async def test_blob_follows_the_transaction(app: Any, tmp_path: Path) -> None:
    database: Database = app.state.db
    storage = LocalStorage(tmp_path / "tx")
    committed, rolled_back = key_for("a", "committed"), key_for("a", "rolled-back")

    async with database.transaction() as session:
        await session.execute(text("SELECT 1"))
        commit_after_commit(session, storage, await storage.put_bytes(committed, b"kept"))
    assert await storage.read_bytes(committed) == b"kept"

    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
            commit_after_commit(session, storage, await storage.put_bytes(rolled_back, b"lost"))
            raise RuntimeError("rollback")
    assert await storage.size(rolled_back) is None
    assert list(storage.staging.iterdir()) == []

    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
            delete_after_commit(session, storage, committed)
            raise RuntimeError("rollback")
    assert await storage.size(committed) == 4
    async with database.transaction() as session:
        await session.execute(text("SELECT 1"))
        delete_after_commit(session, storage, committed)
    assert await storage.size(committed) is None


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "aborted"])
async def test_a_blob_follows_a_commit_in_doubt(
    settings: Settings, database_url: str, owner_engine: Any, tmp_path: Path, committed: bool
) -> None:
    """The connection drops at COMMIT: the client cannot tell whether
    PostgreSQL committed. The blob waits for PostgreSQL's own answer, so a
    committed transaction keeps its blob and an aborted one leaves none."""
    url = make_url(database_url)
    if not url.host:
        pytest.skip("the test PostgreSQL listens on a Unix socket only")
    proxy = CommitCuttingProxy(url.host, url.port or 5432)
    await proxy.start()
    database = Database(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        app_role=settings.db_app_role,
        pool_size=1,
        max_overflow=0,
    )
    storage = LocalStorage(tmp_path / "blobs")
    key = key_for("a", "in-doubt")
    try:
        proxy.cut_next_commit(deliver=committed)
        with pytest.raises(exc.DBAPIError):
            async with database.transaction() as session:
                transaction_id = await session.scalar(text("SELECT pg_current_xact_id()"))
                commit_after_commit(session, storage, await storage.put_bytes(key, b"kept"))
        await database.settled()
    finally:
        await database.dispose()
        await proxy.stop()
    async with owner_engine.connect() as connection:
        status = await connection.scalar(text("SELECT pg_xact_status(:id)"), {"id": transaction_id})
    assert status == ("committed" if committed else "aborted")
    assert await storage.size(key) == (4 if committed else None)
    assert list(storage.staging.iterdir()) == []
