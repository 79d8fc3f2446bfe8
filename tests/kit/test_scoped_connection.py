"""The one-round-trip scoped BEGIN (`backend.kit.scoped_connection`) overrides
private methods of SQLAlchemy's asyncpg adapter. It was written for the
releases in `SQLALCHEMY_TESTED`: these tests fail on any other release, and
when the private members it relies on change shape, so that an upgrade
re-reads the adapter before anything runs on a changed contract. They also
hold what the override is for: a request's transaction costs its statements
plus two round trips (scoped BEGIN with the pre-ping, and COMMIT), not six."""

from __future__ import annotations

import inspect
from typing import Any

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from backend.kit.db import Database, tenant_scope
from backend.kit.scoped_connection import SQLALCHEMY_TESTED
from backend.settings import Settings
from tests.factories import make_tenant


def test_sqlalchemy_is_a_release_the_override_was_written_for() -> None:
    major, minor = (int(part) for part in sqlalchemy.__version__.split(".")[:2])
    assert (major, minor) in SQLALCHEMY_TESTED, (
        f"SQLAlchemy {sqlalchemy.__version__}: re-read AsyncAdapt_asyncpg_connection "
        "(_start_transaction, _async_ping, _transaction, commit, rollback, create) "
        "against backend/kit/scoped_connection.py, then add the release to SQLALCHEMY_TESTED"
    )


def test_the_private_members_overridden_keep_their_shape() -> None:
    adapter = AsyncAdapt_asyncpg_connection
    assert "_transaction" in adapter.__slots__
    assert inspect.iscoroutinefunction(adapter._start_transaction)
    assert inspect.iscoroutinefunction(adapter._async_ping)
    assert inspect.ismethod(adapter.create)  # the classmethod the DBAPI's connect uses
    # `ping` (the pool's pre-ping) runs `_async_ping`; commit and rollback end
    # whatever `_transaction` holds (our `_SimpleTransaction` after a scoped BEGIN).
    assert "self._async_ping()" in inspect.getsource(adapter.ping)
    assert "self._transaction.commit" in inspect.getsource(adapter.commit)
    assert "self._transaction.rollback" in inspect.getsource(adapter.rollback)
    # A statement on a connection with no transaction begins one through
    # `_start_transaction` (where a pending scope travels with BEGIN).
    cursor_source = inspect.getsource(adapter._cursor_cls)
    assert "adapt_connection._start_transaction()" in cursor_source


async def test_a_scoped_transaction_costs_two_round_trips_besides_its_statements(
    app: Any, settings: Settings
) -> None:
    tenant = await make_tenant(app, "A")
    database = Database(
        settings.database_url.get_secret_value() if settings.database_url else "",
        app_role=settings.db_app_role,
        pool_size=1,
        max_overflow=0,
    )
    sent: list[str] = []

    @event.listens_for(database.engine.sync_engine, "connect")
    def _log_queries(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda entry: sent.append(entry.query))

    try:
        await database.ping()  # connects (and switches role) before counting
        sent.clear()
        for _ in range(2):  # the first checkout, and a pooled connection's next
            with tenant_scope(tenant.id):
                async with database.transaction() as session:
                    count = (await session.execute(text("SELECT count(*) FROM users"))).scalar()
            assert count == 1  # row-level security saw the scope
            # Besides the prepared statement (which the query logger does not
            # see): one message begins the transaction in its scope and is the
            # pre-ping, one commits. No separate BEGIN, ping, set_config or
            # ROLLBACK.
            assert len(sent) == 2, sent
            assert sent[0].startswith("BEGIN; SELECT set_config('app.tenant_id', ")
            assert str(tenant.id) in sent[0]
            assert sent[1] == "COMMIT"
            sent.clear()
    finally:
        await database.dispose()
