"""Database engine, sessions and the tenancy scope that row-level security reads.

Every transaction begins by copying two context variables into
transaction-local PostgreSQL settings (`set_config(..., true)`):

* `app.tenant_id` — the tenant whose rows the policies let through;
* `app.system_scope` — the name of an explicit cross-tenant scope, which the
  policies also honour.

Because the settings are transaction-local they can never leak into the next
request that gets the same pooled connection. Connections switch to the
application role (`SET ROLE`), which is neither superuser nor table owner, so
the policies apply even when the configured URL is a superuser's.

`BEGIN` and the scope's `set_config` travel as one simple-query message
(`BEGIN; SELECT set_config(...), set_config(...)`), both statements inside
the same transaction, so the settings are transaction-local exactly as
before — and that message is also the checkout's pre-ping
(`ScopedAsyncpgConnection`), so a session's first query follows it directly.

Dead connections: every checkout pings the connection first
(`pool_pre_ping`), in one round trip — that scoped `BEGIN` as a simple query
(`SELECT 1` when no transaction is to begin) — instead of the three
SQLAlchemy's asyncpg adapter spends (BEGIN, a prepared no-op, ROLLBACK). A
connection the server has closed (PostgreSQL restarted, an operator
terminated it, a proxy cut it) is replaced before the request uses it, so
requests do not notice. A connection that dies under a request fails
that request's statement: SQLAlchemy recognises the disconnect, invalidates
the pool and the request answers 503; the next requests reconnect.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_

logger = logging.getLogger("dossier.db")

_tenant_id: ContextVar[UUID | None] = ContextVar("dossier_tenant_id", default=None)
_system_scope: ContextVar[str | None] = ContextVar("dossier_system_scope", default=None)

AfterCommit = Callable[[], Awaitable[None]]


def current_tenant_id() -> UUID | None:
    return _tenant_id.get()


def current_system_scope() -> str | None:
    return _system_scope.get()


@contextmanager
def tenant_scope(tenant_id: UUID | None) -> Iterator[None]:
    """Bind to one tenant (None: to no tenant, as platform admin routes do
    inside their system scope, so that no query is narrowed to the admin's
    own tenant)."""
    token = _tenant_id.set(tenant_id)
    try:
        yield
    finally:
        _tenant_id.reset(token)


@contextmanager
def system_scope(name: str) -> Iterator[None]:
    """Cross-tenant access, named so that every use can be found and logged."""
    logger.debug("entering system scope", extra={"system_scope": name})
    token = _system_scope.set(name)
    try:
        yield
    finally:
        _system_scope.reset(token)


class ScopedSession(Session):
    """The sync session behind every `AsyncSession`; carries the RLS hook."""


_SET_SCOPE = text(
    "SELECT set_config('app.tenant_id', :tenant, true),"
    " set_config('app.system_scope', :scope, true)"
)


def _scope_params() -> dict[str, str]:
    tenant = _tenant_id.get()
    return {"tenant": str(tenant) if tenant else "", "scope": _system_scope.get() or ""}


_SAFE_SETTING = re.compile(r"^[A-Za-z0-9_.:-]*$")


def _scope_statement(params: dict[str, str]) -> str:
    """The same `set_config` calls as `_SET_SCOPE`, as literal SQL for the
    simple-query protocol (which takes no parameters). The values are tenant
    ids (UUIDs) and scope names from the code; anything else is refused."""
    for value in params.values():
        if not _SAFE_SETTING.match(value):
            raise ValueError("tenancy scope values must be plain identifiers")
    return (
        f"SELECT set_config('app.tenant_id', '{params['tenant']}', true),"
        f" set_config('app.system_scope', '{params['scope']}', true)"
    )


class _SimpleTransaction:
    """What the SQLAlchemy adapter keeps as its asyncpg transaction once
    `ScopedAsyncpgConnection` has sent BEGIN itself."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def commit(self) -> None:
        await self._connection.execute("COMMIT")

    async def rollback(self) -> None:
        await self._connection.execute("ROLLBACK")


class ScopedAsyncpgConnection(AsyncAdapt_asyncpg_connection):
    """SQLAlchemy's asyncpg adapter, starting a transaction and its tenancy
    scope in the same round trip as the checkout's pre-ping.

    The pre-ping at checkout sends `BEGIN; SELECT set_config(...)` for the
    scope in force (the context variables a session's transaction is about to
    use) as one simple-query message: the connection is proven alive and the
    transaction has begun, transaction-local settings and all (`begun_scope`).
    The session's `after_begin` hook finds the transaction under way in that
    scope and sends nothing. Should the scope differ by the time the session
    begins, the hook sets it inside the transaction; a transaction begun any
    other way (isolation options, no ping) starts with the scope pending
    (`pending_scope`), still as one message. Every commit or rollback (the
    pool rolls back each returned connection) ends the transaction and drops
    both, so a scope only ever applies to the transaction it was set for.
    """

    __slots__ = ("begun_scope", "pending_scope")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.pending_scope: str | None = None
        self.begun_scope: str | None = None

    @property
    def _plain(self) -> bool:
        return self.isolation_level is None and not (self.readonly or self.deferrable)

    async def _begin_scoped(self, scope: str) -> None:
        raw: Any = self._connection  # the asyncpg connection
        try:
            await raw.execute(f"BEGIN; {scope}")
        except Exception:
            # BEGIN may have run before set_config failed: never leave a
            # transaction open that nobody tracks.
            if not raw.is_closed() and raw.is_in_transaction():
                try:
                    await raw.execute("ROLLBACK")
                except Exception:
                    logger.warning("rollback after a failed scoped BEGIN failed")
            raise
        self._transaction = _SimpleTransaction(raw)  # type: ignore[assignment]

    async def _start_transaction(self) -> None:
        scope, self.pending_scope = self.pending_scope, None
        raw: Any = self._connection
        if scope is None or not self._plain:
            await super()._start_transaction()  # type: ignore[no-untyped-call]
            if scope is not None:  # other transaction options: two round trips
                await raw.execute(scope)
            return
        try:
            await self._begin_scoped(scope)
        except Exception as error:
            self._handle_exception(error)

    async def _async_ping(self) -> None:
        """The pre-ping, as one simple query that also begins the checkout's
        transaction in the current scope: one round trip for both, and no
        prepared statement for a transaction-pooling proxy to lose."""
        raw: Any = self._connection
        if self._transaction is not None or not self._plain:
            await raw.execute("SELECT 1")
            return
        scope = _scope_statement(_scope_params())
        await self._begin_scoped(scope)
        self.begun_scope = scope

    def rollback(self) -> None:
        self.pending_scope = self.begun_scope = None
        super().rollback()  # type: ignore[no-untyped-call]

    def commit(self) -> None:
        self.pending_scope = self.begun_scope = None
        super().commit()  # type: ignore[no-untyped-call]


class ScopedAsyncpgDBAPI(AsyncAdapt_asyncpg_dbapi):
    """The asyncpg DBAPI adapter, making `ScopedAsyncpgConnection`s; passed
    as the engine's `module` (SQLAlchemy's documented way to swap the DBAPI)."""

    def connect(self, *args: Any, **kwargs: Any) -> ScopedAsyncpgConnection:
        creator_fn = kwargs.pop("async_creator_fn", self.asyncpg.connect)
        cache_size = kwargs.pop("prepared_statement_cache_size", 100)
        name_func = kwargs.pop("prepared_statement_name_func", None)
        connection: ScopedAsyncpgConnection = await_(
            ScopedAsyncpgConnection.create(
                self,
                creator_fn(*args, **kwargs),
                prepared_statement_cache_size=cache_size,
                prepared_statement_name_func=name_func,
            )
        )
        return connection


@event.listens_for(ScopedSession, "after_begin")
def _apply_scope(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    params = _scope_params()
    adapter = connection.connection.dbapi_connection
    if isinstance(adapter, ScopedAsyncpgConnection):
        statement = _scope_statement(params)
        if adapter._transaction is None:
            adapter.pending_scope = statement  # sent along with BEGIN
            return
        if adapter.begun_scope == statement:
            return  # begun in this scope by the checkout's ping
    connection.execute(_SET_SCOPE, params)


async def _apply_to_transaction(session: AsyncSession) -> None:
    if session.in_transaction():
        await session.execute(_SET_SCOPE, _scope_params())


@asynccontextmanager
async def scope(
    session: AsyncSession | None, tenant_id: UUID | None, *, system: str | None = None
) -> AsyncIterator[None]:
    """Work as tenant `tenant_id` (None: no tenant), cross-tenant when
    `system` names a system scope, for the code inside AND for the
    transaction `session` has under way, in one step, so that the context
    and the transaction's `app.tenant_id` cannot disagree. On leaving, both
    return to the enclosing scope. A transaction begun inside is scoped by
    the begin hook as usual."""
    with contextlib.ExitStack() as stack:
        if system is not None:
            stack.enter_context(system_scope(system))
        stack.enter_context(tenant_scope(tenant_id))
        if session is not None:
            await _apply_to_transaction(session)
        yield
        if session is not None:
            await session.flush()  # what changed inside is written inside
    if session is not None:
        await _apply_to_transaction(session)


def async_url(url: str) -> URL:
    """Accept `postgresql://` URLs (as libpq tools write them) for asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


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
            dbapi_connection.run_async(lambda raw: raw.execute(f'SET ROLE "{app_role}"'))

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


async def run_after_commit(session: AsyncSession) -> None:
    actions: list[AfterCommit] = session.info.pop("after_commit", [])
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
            try:
                yield session
                await run_before_commit(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                session.info.pop("before_commit", None)
                session.info.pop("after_commit", None)
                raise
        await run_after_commit(session)

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
        await self.engine.dispose()
