"""Row-level security: a query that forgets its tenant filter still sees only
the current tenant's rows, and the application role cannot escape."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import (
    Database,
    ScopedAsyncpgConnection,
    ScopedSession,
    system_scope,
    tenant_scope,
)
from tests.factories import make_tenant

TENANT_OWNED = ["users", "roles", "user_roles", "audit_events"]


async def _tenant_ids(app: Any, table: str) -> set[Any]:
    async with app.state.db.transaction() as session:
        column = "id" if table == "tenants" else "tenant_id"
        rows = await session.execute(text(f"SELECT {column} FROM {table}"))
        return set(rows.scalars())


async def _seed_audit(app: Any, tenant_id: Any) -> None:
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO audit_events (id, tenant_id, actor_type, action, resource_type)"
                    " VALUES (gen_random_uuid(), :t, 'system', 'test.seeded', 'test')"
                ),
                {"t": tenant_id},
            )


async def test_unfiltered_select_sees_only_current_tenant(app: Any) -> None:
    first = await make_tenant(app, "A", roles=("owner", "member"))
    second = await make_tenant(app, "B", roles=("owner", "viewer"))
    for tenant in (first, second):
        await _seed_audit(app, tenant.id)

    for table in ["tenants", *TENANT_OWNED]:
        with tenant_scope(first.id):
            assert await _tenant_ids(app, table) == {first.id}, table
        with tenant_scope(second.id):
            assert await _tenant_ids(app, table) == {second.id}, table


async def test_no_tenant_sees_nothing_and_system_scope_sees_all(app: Any) -> None:
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    for table in ["tenants", *TENANT_OWNED[:3]]:
        assert await _tenant_ids(app, table) == set(), table
        with system_scope("tests.rls"):
            assert await _tenant_ids(app, table) >= {first.id, second.id}, table


async def test_app_role_cannot_write_into_another_tenant(app: Any) -> None:
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    with tenant_scope(first.id), pytest.raises(DBAPIError, match="row-level security"):
        async with app.state.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO roles (id, tenant_id, name, permissions)"
                    " VALUES (gen_random_uuid(), :t, 'sneaky', '{}')"
                ),
                {"t": second.id},
            )


async def test_app_role_cannot_disable_row_security(app: Any) -> None:
    tenant = await make_tenant(app, "A")
    with tenant_scope(tenant.id), pytest.raises(DBAPIError, match="row-level security"):
        async with app.state.db.transaction() as session:
            await session.execute(text("SET LOCAL row_security = off"))
            await session.execute(text("SELECT * FROM users"))


async def test_app_role_is_neither_superuser_nor_owner(app: Any) -> None:
    async with app.state.db.transaction() as session:
        row = (
            await session.execute(
                text(
                    "SELECT r.rolsuper, r.rolbypassrls, current_user FROM pg_roles r"
                    " WHERE r.rolname = current_user"
                )
            )
        ).one()
        owners = set(
            (
                await session.execute(
                    text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
    assert row[0] is False
    assert row[1] is False
    assert row[2] == app.state.settings.db_app_role
    assert row[2] not in owners


async def test_app_role_survives_a_first_transaction_that_rolls_back(app: Any) -> None:
    """A fresh connection whose first use rolls back (as `/ready`'s ping
    does) still runs as the application role afterwards."""
    settings = app.state.settings
    database = Database(
        settings.database_url.get_secret_value(),
        app_role=settings.db_app_role,
        pool_size=1,
        max_overflow=0,
    )
    try:
        await database.ping()
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await connection.rollback()
        async with database.transaction() as session:
            user = (await session.execute(text("SELECT current_user"))).scalar()
        assert user == settings.db_app_role
    finally:
        await database.dispose()


async def test_audit_rows_cannot_be_updated_or_deleted(app: Any) -> None:
    tenant = await make_tenant(app, "A")
    await _seed_audit(app, tenant.id)
    for statement in ("UPDATE audit_events SET action = 'tampered'", "DELETE FROM audit_events"):
        with tenant_scope(tenant.id), pytest.raises(DBAPIError, match="permission denied"):
            async with app.state.db.transaction() as session:
                await session.execute(text(statement))


async def test_tenant_setting_does_not_leak_to_next_transaction(app: Any) -> None:
    tenant = await make_tenant(app, "A")
    engine = app.state.db.engine
    async with engine.connect() as connection:
        async with connection.begin():
            await connection.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)}
            )
            assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 1
        async with connection.begin():
            assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


async def _setting(connection: Any) -> str | None:
    result = await connection.execute(text("SELECT current_setting('app.tenant_id', true)"))
    value: str | None = result.scalar()
    return value


async def test_scope_sent_with_begin_stays_in_its_transaction(app: Any) -> None:
    """The session's scope travels with BEGIN (one message), and the next
    transaction on the same connection sees none of it."""
    tenant = await make_tenant(app, "A")
    async with app.state.db.engine.connect() as connection:
        adapter = (await connection.get_raw_connection()).dbapi_connection
        assert isinstance(adapter, ScopedAsyncpgConnection)
        with tenant_scope(tenant.id):
            session = AsyncSession(bind=connection, sync_session_class=ScopedSession)
            assert await _setting(session) == str(tenant.id)
            assert (await session.execute(text("SELECT count(*) FROM users"))).scalar() == 1
            await session.commit()
            await session.close()
        async with connection.begin():
            assert await _setting(connection) in ("", None)
            assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


async def test_scope_of_a_transaction_that_never_ran_a_statement_is_dropped(app: Any) -> None:
    """A session that begins (scope left pending on the connection) but ends
    before any statement must not hand its scope to the connection's next user."""
    tenant = await make_tenant(app, "A")
    async with app.state.db.engine.connect() as connection:
        with tenant_scope(tenant.id):
            session = AsyncSession(bind=connection, sync_session_class=ScopedSession)
            await session.connection()  # begins: the hook runs, nothing is sent yet
            await session.rollback()
            await session.close()
        async with connection.begin():
            assert await _setting(connection) in ("", None)
            assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


async def test_scope_values_that_are_not_identifiers_are_refused(app: Any) -> None:
    with (
        system_scope("x', true), set_config('app.tenant_id', 'y"),
        pytest.raises(ValueError, match="plain identifiers"),
    ):
        async with app.state.db.transaction() as session:
            await session.execute(text("SELECT 1"))
