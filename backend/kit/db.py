"""Database engine, sessions and the one unit of work (`Database.transaction`).

Connections switch to the application role (`SET ROLE`), which is neither
superuser nor table owner, so the row-level security policies apply even
when the configured URL is a superuser's. Every transaction begins in the
tenancy scope of `backend.kit.scope`, in the same round trip as the
checkout's pre-ping (`backend.kit.scoped_connection`).

The scope's names are importable from here too (`tenant_scope`,
`system_scope`, `scope`, ...), as every domain has always imported them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from backend.kit.scope import (
    SET_SCOPE,
    current_system_scope,
    current_tenant_id,
    scope,
    scope_params,
    scope_statement,
    system_scope,
    tenant_scope,
)
from backend.kit.scoped_connection import (
    ScopedAsyncpgConnection,
    ScopedAsyncpgDBAPI,
    ScopedSession,
)

__all__ = [
    "AfterCommit",
    "Database",
    "ScopedAsyncpgConnection",
    "ScopedSession",
    "after_commit",
    "async_url",
    "before_commit",
    "create_engine",
    "create_sessionmaker",
    "current_system_scope",
    "current_tenant_id",
    "on_outcome",
    "run_after_commit",
    "run_before_commit",
    "scope",
    "system_scope",
    "tenant_scope",
]

logger = logging.getLogger("dossier.db")

AfterCommit = Callable[[], Awaitable[None]]

CURRENT_TRANSACTION_ID = text("SELECT pg_current_xact_id()")
TRANSACTION_STATUS = text("SELECT pg_xact_status(:transaction_id)")

# How long an in-doubt commit's outcome is asked of PostgreSQL before its
# actions are given up (logged with the transaction id).
SETTLE_DEADLINE_SECONDS = 120.0
_ON_COMMITTED, _ON_ROLLED_BACK = "on_committed", "on_rolled_back"


def async_url(url: str) -> URL:
    """Accept `postgresql://` URLs (as libpq tools write them) for asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


# The application role's sessions end a transaction idle for this long.
IDLE_IN_TRANSACTION_TIMEOUT = "60s"


def create_engine(
    url: str,
    *,
    app_role: str | None,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_pre_ping: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine whose connections run as `app_role` (none: as the URL's user)."""
    engine = create_async_engine(
        async_url(url),
        module=ScopedAsyncpgDBAPI(asyncpg),  # type: ignore[no-untyped-call]
        pool_pre_ping=pool_pre_ping,
        pool_size=pool_size,
        max_overflow=max_overflow,
        **kwargs,
    )
    if app_role:

        @event.listens_for(engine.sync_engine, "connect")
        def _switch_role(dbapi_connection: Any, connection_record: Any) -> None:
            # On the raw asyncpg connection, outside any transaction, so that
            # it holds for the connection's life. Through a DBAPI cursor it ran
            # inside the adapter's implicit transaction, and when the first
            # use of the connection rolled back (a /ready ping does) the role
            # switch was undone: the pooled connection then ran as the URL's
            # user (superuser or table owner), past every RLS policy.
            # A transaction left idle (a request stuck between statements)
            # is ended by the server instead of holding its locks and slot.
            dbapi_connection.run_async(
                lambda raw: raw.execute(
                    f'SET ROLE "{app_role}"; '
                    f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'"
                )
            )

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=ScopedSession)


def before_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` inside the transaction, just before it commits (it may
    still write; an error rolls the whole transaction back)."""
    session.info.setdefault("before_commit", []).append(action)


async def run_before_commit(session: AsyncSession) -> None:
    while actions := session.info.pop("before_commit", []):
        for action in actions:
            await action()


def after_commit(session: AsyncSession | Session, action: AfterCommit) -> None:
    """Run `action` once the transaction has committed (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(action)


def on_outcome(
    session: AsyncSession | Session,
    *,
    committed: AfterCommit,
    rolled_back: AfterCommit | None = None,
) -> None:
    """Run `committed` once the transaction has committed, `rolled_back` once
    it has not, even when COMMIT itself failed and the outcome is in doubt
    (the connection dropped after PostgreSQL may have committed): then
    `Database.transaction` asks PostgreSQL what became of the transaction
    once it answers again, and runs the matching action. For effects outside
    the database that must agree with it, such as blobs; `after_commit`'s
    actions are dropped when COMMIT fails."""
    session.info.setdefault(_ON_COMMITTED, []).append(committed)
    if rolled_back is not None:
        session.info.setdefault(_ON_ROLLED_BACK, []).append(rolled_back)


async def run_after_commit(session: AsyncSession) -> None:
    await _run(session.info.pop("after_commit", []) + session.info.pop(_ON_COMMITTED, []))


def _unreachable(error: Exception) -> bool:
    """PostgreSQL cannot be reached (yet): worth asking again."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        )
    return isinstance(error, OSError | exc.TimeoutError)


async def _run(actions: Iterable[AfterCommit]) -> None:
    for action in actions:
        try:
            await action()
        except Exception:
            logger.exception("after-commit action failed")


class Database:
    """The engine and session factory of one process."""

    def __init__(
        self,
        url: str,
        *,
        app_role: str | None,
        pool_size: int,
        max_overflow: int,
        pool_pre_ping: bool = True,
    ) -> None:
        self.engine = create_engine(
            url,
            app_role=app_role,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=pool_pre_ping,
        )
        self.sessionmaker = create_sessionmaker(self.engine)
        self._settling: set[asyncio.Task[None]] = set()

    def share(self, key: str, value: Any) -> None:
        """Put `value` in the `info` of every session made from now on: how a
        session hook finds this app's services (several apps may share a
        process, as in tests)."""
        self.sessionmaker.configure(info={**(self.sessionmaker.kw.get("info") or {}), key: value})

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error.

        This and the request session dependency are the only places that
        commit; services and repositories flush at most.
        """
        async with self.sessionmaker() as session:
            transaction_id: int | None = None
            try:
                yield session
                await run_before_commit(session)
                if session.info.get(_ON_COMMITTED):
                    transaction_id = await session.scalar(CURRENT_TRANSACTION_ID)
                await session.commit()
            except BaseException:
                await session.rollback()
                session.info.pop("before_commit", None)
                session.info.pop("after_commit", None)
                committed = session.info.pop(_ON_COMMITTED, [])
                rolled_back = session.info.pop(_ON_ROLLED_BACK, [])
                if transaction_id is None:
                    await _run(rolled_back)
                else:
                    self._settle_later(transaction_id, committed, rolled_back)
                raise
        session.info.pop(_ON_ROLLED_BACK, None)
        await run_after_commit(session)

    def _settle_later(
        self, transaction_id: int, committed: list[AfterCommit], rolled_back: list[AfterCommit]
    ) -> None:
        """COMMIT was sent and failed: PostgreSQL may have committed. Ask it,
        off the failing request, once it answers (`pg_xact_status`)."""
        task = asyncio.get_running_loop().create_task(
            self._settle(transaction_id, committed, rolled_back)
        )
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(
        self, transaction_id: int, committed: list[AfterCommit], rolled_back: list[AfterCommit]
    ) -> None:
        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        delay = 0.05
        while time.monotonic() < deadline:
            try:
                async with self.engine.connect() as connection:
                    status = await connection.scalar(
                        TRANSACTION_STATUS, {"transaction_id": transaction_id}
                    )
            except Exception as error:
                if not _unreachable(error):
                    logger.exception("asking for a transaction's outcome failed")
                    return
                status = "unreachable"
            if status == "committed":
                await _run(committed)
                return
            if status == "aborted":
                await _run(rolled_back)
                return
            if status is None:  # too old for PostgreSQL to remember
                break
            await asyncio.sleep(delay)  # unreachable, or the server still finishing it
            delay = min(delay * 2, 2.0)
        logger.error(
            "the outcome of a transaction whose COMMIT failed is unknown; "
            "its after-commit actions were not run",
            extra={"transaction_id": transaction_id},
        )

    async def settled(self) -> None:
        """Wait until every in-doubt commit is settled (before stopping)."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A unit of work for hot reads: a Core connection, no ORM session.

        Its transaction runs in the scope in force, like a session's: begun
        by the checkout's ping in that scope (`ScopedAsyncpgConnection`), or
        given it here when the ping did not. It commits at the end; any
        error rolls it back (the pool resets the connection).
        """
        async with self.engine.connect() as connection:
            params = scope_params()
            fairy = await connection.get_raw_connection()
            adapter = fairy.dbapi_connection
            if not (
                isinstance(adapter, ScopedAsyncpgConnection)
                and adapter.begun_scope == scope_statement(params)
            ):
                await connection.execute(SET_SCOPE, params)
            yield connection
            await connection.commit()

    async def ping(self) -> None:
        """One retry when the first attempt met a connection that had died
        (it is invalidated by then, with the rest of the pool)."""
        try:
            await self._ping()
        except exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            await self._ping()

    async def _ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.settled()
        await self.engine.dispose()
