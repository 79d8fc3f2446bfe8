"""Running Alembic from code: the CLI (its own loop) and tests (a running loop).

The migration scripts are the top-level `alembic/` folder of the repository.
The wheel ships them as the package `dossier_migrations` (setup.py maps the
folder to it), so an installed `dossier` finds them through that package; in a
source checkout they are the folder beside `backend/`. Either way they are the
scripts of the same tree as the `backend` code that runs them. The settings an
`alembic.ini` would hold are set here, so no file outside the packages is read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path

from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from alembic import command

MIGRATIONS_PACKAGE = "dossier_migrations"
_BACKEND_DIR = Path(__file__).resolve().parents[1]


def script_directory() -> Path:
    """Where `env.py` and `versions/` are for the running `backend`."""
    checkout = _BACKEND_DIR.parent / "alembic"
    if (checkout / "env.py").is_file() and (checkout / "versions").is_dir():
        return checkout
    with as_file(files(MIGRATIONS_PACKAGE) / "env.py") as env:
        return Path(env).parent


def alembic_config(database_url: str, app_role: str) -> Config:
    scripts = script_directory()
    config = Config()
    config.set_main_option("script_location", str(scripts))
    # Migrations import their shared helpers (`tenancy_sql`) from here.
    config.set_main_option("prepend_sys_path", str(scripts))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    config.attributes["database_url"] = database_url
    config.attributes["app_role"] = app_role
    config.attributes["configure_logger"] = False
    return config


@contextmanager
def _sys_path_kept() -> Iterator[None]:
    """Alembic prepends the script directory to `sys.path` on every command;
    put the path back afterwards so repeated runs in one process do not pile up."""
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved


def upgrade(database_url: str, revision: str = "head", *, app_role: str) -> None:
    """Blocking; runs its own event loop (call it where no loop is running)."""
    with _sys_path_kept():
        command.upgrade(alembic_config(database_url, app_role), revision)


def downgrade(database_url: str, revision: str, *, app_role: str) -> None:
    with _sys_path_kept():
        command.downgrade(alembic_config(database_url, app_role), revision)


async def _run_on(
    connection: AsyncConnection, database_url: str, app_role: str, action: str, revision: str
) -> None:
    """Inside a running loop: Alembic's connection-sharing recipe."""

    def run(sync_connection: object) -> None:
        config = alembic_config(database_url, app_role)
        config.attributes["connection"] = sync_connection
        with _sys_path_kept():
            getattr(command, action)(config, revision)

    await connection.run_sync(run)


async def upgrade_on(
    connection: AsyncConnection, database_url: str, revision: str = "head", *, app_role: str
) -> None:
    await _run_on(connection, database_url, app_role, "upgrade", revision)


async def downgrade_on(
    connection: AsyncConnection, database_url: str, revision: str, *, app_role: str
) -> None:
    await _run_on(connection, database_url, app_role, "downgrade", revision)
