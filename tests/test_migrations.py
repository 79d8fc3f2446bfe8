"""Migrations upgrade, downgrade and upgrade again cleanly, and match the models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db_models import Base
from backend.kit.db import async_url
from backend.kit.migrations import downgrade_on, upgrade_on
from backend.settings import Settings

APP_ROLE: str = Settings.model_fields["db_app_role"].default


async def _tables(connection: Any) -> set[str]:
    rows = await connection.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    return set(rows.scalars()) - {"alembic_version"}


def _diff(sync_connection: Any) -> list[Any]:
    context = MigrationContext.configure(sync_connection)
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade(create_database: Callable[[], Awaitable[str]]) -> None:
    url = await create_database()
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            await upgrade_on(connection, url, app_role=APP_ROLE)
            assert await _tables(connection) == set(Base.metadata.tables)
            assert await connection.run_sync(_diff) == []
        async with engine.begin() as connection:
            await downgrade_on(connection, url, "base", app_role=APP_ROLE)
            assert await _tables(connection) == set()
        async with engine.begin() as connection:
            await upgrade_on(connection, url, app_role=APP_ROLE)
            assert await _tables(connection) == set(Base.metadata.tables)
            policies = await connection.execute(
                text("SELECT count(DISTINCT tablename) FROM pg_policies WHERE schemaname='public'")
            )
            forced = await connection.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relforcerowsecurity"
                )
            )
            assert policies.scalar() == forced.scalar() == len(Base.metadata.tables)
    finally:
        await engine.dispose()
