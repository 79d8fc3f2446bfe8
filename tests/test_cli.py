"""The `dossier` command, run as a real process."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.cli import build_parser
from backend.kit.db import async_url
from tests.support.server import clean_env, run_dossier

PASSWORD = "a long enough password"


async def _migrated_database(
    create_database: Callable[[], Awaitable[str]], redis_url: str
) -> dict[str, str]:
    url = await create_database()
    env = clean_env(DATABASE_URL=url, REDIS_URL=redis_url)
    result = run_dossier("migrate", env=env)
    assert result.returncode == 0, result.stderr
    return env


async def _query(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def test_create_tenant_creates_system_roles_and_owner(
    create_database: Callable[[], Awaitable[str]], redis_url: str
) -> None:
    env = await _migrated_database(create_database, redis_url)
    result = run_dossier(
        "create-tenant",
        "--name",
        "Acme",
        "--owner-email",
        "Boss@Acme.test",
        "--owner-password",
        PASSWORD,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    rows = await _query(
        env["DATABASE_URL"],
        "SELECT t.slug, u.email, r.name FROM users u JOIN tenants t ON t.id = u.tenant_id"
        " JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id",
    )
    assert rows == [("acme", "boss@acme.test", "owner")]
    roles = await _query(
        env["DATABASE_URL"], "SELECT name FROM roles WHERE is_system ORDER BY name"
    )
    assert [row[0] for row in roles] == ["admin", "member", "owner", "viewer"]

    duplicate = run_dossier(
        "create-tenant",
        "--name",
        "Other",
        "--owner-email",
        "boss@acme.test",
        "--owner-password",
        PASSWORD,
        env=env,
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr


async def test_create_superadmin_uses_one_platform_tenant(
    create_database: Callable[[], Awaitable[str]], redis_url: str
) -> None:
    env = await _migrated_database(create_database, redis_url)
    for email in ("root@platform.test", "second@platform.test"):
        result = run_dossier("create-superadmin", "--email", email, "--password", PASSWORD, env=env)
        assert result.returncode == 0, result.stderr
    rows = await _query(
        env["DATABASE_URL"],
        "SELECT t.slug, u.is_superadmin, r.name FROM users u JOIN tenants t ON t.id = u.tenant_id"
        " JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id",
    )
    assert rows == [("platform", True, "owner"), ("platform", True, "owner")]


async def test_short_password_is_refused_and_nothing_is_written(
    create_database: Callable[[], Awaitable[str]], redis_url: str
) -> None:
    env = await _migrated_database(create_database, redis_url)
    result = run_dossier(
        "create-tenant",
        "--name",
        "X",
        "--owner-email",
        "x@x.test",
        "--owner-password",
        "short",
        env=env,
    )
    assert result.returncode == 1
    assert "at least 12 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert await _query(env["DATABASE_URL"], "SELECT id FROM tenants") == []


def test_openapi_prints_the_spec() -> None:
    result = run_dossier("openapi", env=clean_env())
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    assert spec["info"]["title"] == "Dossier"
    assert "/health" in spec["paths"]
    operation_ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_serve_runs_the_job_worker_unless_told_not_to() -> None:
    assert build_parser().parse_args(["serve"]).worker is True
    assert build_parser().parse_args(["serve", "--no-worker"]).worker is False
