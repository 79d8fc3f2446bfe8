"""Alembic environment: async engine, or a connection handed in by the caller.

Migrations run as the configured (owner) user, never as the application role.
`backend.kit.migrations` builds the configuration in code and passes the
database URL, the application role's name (which the migrations grant to:
`tenancy_sql.app_role()` reads it from the migration context) and, for tests
and the CLI inside a running event loop, a live connection through
`config.attributes`. Run by hand (`alembic -c alembic.ini ...` in a checkout),
`DATABASE_URL` and `DB_APP_ROLE` (or `-x app_role=...`) give them instead.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from backend.db_models import Base
from backend.kit.db import async_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# The models, for `alembic revision --autogenerate` and the parity test only:
# migrations themselves never import application code.
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return str(url)


def _app_role() -> str | None:
    role = (
        config.attributes.get("app_role")
        or context.get_x_argument(as_dictionary=True).get("app_role")
        or os.environ.get("DB_APP_ROLE")
    )
    return str(role) if role else None


def run_migrations_offline() -> None:
    context.configure(
        url=async_url(_database_url()).render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        app_role=_app_role(),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, app_role=_app_role())
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(async_url(_database_url()))
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
