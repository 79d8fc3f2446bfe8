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
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction

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


@event.listens_for(ScopedSession, "after_begin")
def _apply_scope(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    connection.execute(_SET_SCOPE, _scope_params())


async def reapply_scope(session: AsyncSession) -> None:
    """Carry a scope entered mid-transaction into the transaction under way."""
    if session.in_transaction():
        await session.execute(_SET_SCOPE, _scope_params())


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
    """An engine whose connections run as `app_role` (none: as the URL's user).

    `pool_pre_ping=False` saves a round trip per checkout, for callers that
    retry on a dead connection themselves (the job worker)."""
    engine = create_async_engine(
        async_url(url),
        pool_pre_ping=pool_pre_ping,
        pool_size=pool_size,
        max_overflow=max_overflow,
        **kwargs,
    )
    if app_role:

        @event.listens_for(engine.sync_engine, "connect")
        def _switch_role(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f'SET ROLE "{app_role}"')
            cursor.close()

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


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
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
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
