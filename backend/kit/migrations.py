"""Running Alembic from code: the CLI (its own loop) and tests (a running loop)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from alembic import command

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking; runs its own event loop (call it where no loop is running)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def _run_on(
    connection: AsyncConnection, database_url: str, action: str, revision: str
) -> None:
    """Inside a running loop: Alembic's connection-sharing recipe."""

    def run(sync_connection: object) -> None:
        config = alembic_config(database_url)
        config.attributes["connection"] = sync_connection
        getattr(command, action)(config, revision)

    await connection.run_sync(run)


async def upgrade_on(
    connection: AsyncConnection, database_url: str, revision: str = "head"
) -> None:
    await _run_on(connection, database_url, "upgrade", revision)


async def downgrade_on(connection: AsyncConnection, database_url: str, revision: str) -> None:
    await _run_on(connection, database_url, "downgrade", revision)
