"""The connection adapter that begins a transaction in its tenancy scope in
one round trip.

`BEGIN` and the scope's `set_config` travel as one simple-query message
(`BEGIN; SELECT set_config(...), set_config(...)`), both statements inside
the same transaction, so the settings are transaction-local — and that
message is also the checkout's pre-ping (`ScopedAsyncpgConnection`), so a
session's first query follows it directly. SQLAlchemy's own adapter spends
three round trips on the pre-ping (BEGIN, a prepared no-op, ROLLBACK) and
two more on BEGIN and the scope: per request, this saves four.

Dead connections: every checkout pings the connection first
(`pool_pre_ping`), in that one round trip (`SELECT 1` when no transaction is
to begin). A connection the server has closed (PostgreSQL restarted, an
operator terminated it, a proxy cut it) is replaced before the request uses
it, so requests do not notice. A connection that dies under a request fails
that request's statement: SQLAlchemy recognises the disconnect, invalidates
the pool and the request answers 503; the next requests reconnect.

This overrides private methods of SQLAlchemy's asyncpg adapter
(`_start_transaction`, `_async_ping`, and the `_transaction` it keeps), so
it is written for the SQLAlchemy versions in `SQLALCHEMY_TESTED`, which
pyproject.toml pins and `tests/kit/test_scoped_connection.py` checks: that
test fails on any other version, and checks the adapter's private members
still have the shape these overrides rely on, and that a request's
transaction costs the round trips said above. Moving to a new SQLAlchemy
release means re-reading `sqlalchemy/dialects/postgresql/asyncpg.py` for
those members, then widening the pin.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_

from backend.kit.scope import SET_SCOPE, scope_params, scope_statement

logger = logging.getLogger("dossier.db")

# The SQLAlchemy releases (major, minor) these overrides were written for and
# tested against: 2.1 (`AsyncAdapt_asyncpg_connection.create`, and
# `_start_transaction` tracking the transaction only once BEGIN succeeded).
SQLALCHEMY_TESTED = ((2, 1),)


class ScopedSession(Session):
    """The sync session behind every `AsyncSession`; carries the RLS hook."""


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
        scope = scope_statement(scope_params())
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
    params = scope_params()
    adapter = connection.connection.dbapi_connection
    if isinstance(adapter, ScopedAsyncpgConnection):
        statement = scope_statement(params)
        if adapter._transaction is None:
            adapter.pending_scope = statement  # sent along with BEGIN
            return
        if adapter.begun_scope == statement:
            return  # begun in this scope by the checkout's ping
    connection.execute(SET_SCOPE, params)
