"""What a scenario can use: the servers' URLs, the app's settings, the
database (through the app's own services), seeded tenants and their tokens."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.kit.db import Database, system_scope
from backend.kit.security.jwt import issue_access_token
from backend.roles.service import role_service
from backend.settings import Settings
from backend.tenants.service import tenant_service
from backend.users.models import User
from backend.users.service import new_password_hash, user_service
from bench.load import ROOT, Pinning, pinned
from bench.registry import RunOptions

PASSWORD = "bench horse battery staple"
ROLES = ("owner", "admin", "member", "viewer")


@dataclass
class SeededTenant:
    id: uuid.UUID
    slug: str
    users: dict[str, User] = field(default_factory=dict)  # by role name

    @property
    def owner(self) -> User:
        return self.users["owner"]


@dataclass
class BenchContext:
    settings: Settings  # the settings the app under test runs with
    database: Database  # as the app connects (application role, RLS applies)
    database_url: str  # this run's database, as its owner (SQLAlchemy URL)
    dsn: str  # the same for asyncpg / libpq (`postgresql://...`)
    pg_server_url: str  # the server, to create further databases on
    redis_url: str
    app_url: str  # the Dossier app under test
    baseline_url: str  # the bare FastAPI + asyncpg app
    env: dict[str, str]  # the app's environment, for further processes (workers)
    options: RunOptions
    pinning: Pinning
    work_dir: Path  # scratch space for this run
    app_pid: int | None = None  # the app server's process
    profile_dir: Path | None = None  # set by --profile: sample app scenarios with py-spy
    state: dict[str, Any] = field(default_factory=dict)  # scenarios' shared seeds
    _tenants: list[SeededTenant] = field(default_factory=list)

    async def tenant(self) -> SeededTenant:
        """The bench tenant: one user per system role (owner, admin, member, viewer)."""
        return (await self.tenants(1))[0]

    async def tenants(self, count: int) -> list[SeededTenant]:
        """`count` tenants (the first is `tenant()`), created once and reused."""
        while len(self._tenants) < count:
            roles = ROLES if not self._tenants else ("owner",)
            self._tenants.append(
                await self.make_tenant(f"Bench {len(self._tenants) + 1}", roles=roles)
            )
        return self._tenants[:count]

    async def make_tenant(self, name: str, roles: tuple[str, ...] = ("owner",)) -> SeededTenant:
        """A tenant provisioned by the app's own service, with a user per role."""
        # One hash for every user made here (each verifies with its own salt).
        password_hash = await new_password_hash(self.settings, PASSWORD, None)
        with system_scope("bench.seed"):
            async with self.database.transaction() as session:
                provisioned = await tenant_service.provision(
                    session,
                    name=f"{name} {uuid.uuid4().hex[:6]}",
                    owner_email=f"owner-{uuid.uuid4().hex[:10]}@bench.example",
                    owner_password_hash=password_hash,
                )
                tenant = SeededTenant(id=provisioned.tenant.id, slug=provisioned.tenant.slug)
                tenant.users["owner"] = provisioned.owner
                for role_name in roles:
                    if role_name in tenant.users:
                        continue
                    found = await role_service.roles_by_names(session, tenant.id, [role_name])
                    tenant.users[role_name] = await user_service.create_user(
                        session,
                        tenant_id=tenant.id,
                        email=f"{role_name}-{uuid.uuid4().hex[:10]}@bench.example",
                        password_hash=password_hash,
                        roles=found,
                    )
        return tenant

    def bearer(self, user: User) -> dict[str, str]:
        """An access token for `user`, as the login route issues it."""
        token, _ = issue_access_token(
            self.settings, user_id=user.id, tenant_id=user.tenant_id, session_id=uuid.uuid4()
        )
        return {"Authorization": f"Bearer {token}"}

    @contextmanager
    def process(
        self,
        *command: str,
        env: Mapping[str, str] | None = None,
        cpus: str | None = "server",
        log: Path | None = None,
    ) -> Iterator[subprocess.Popen[bytes]]:
        """A helper process (a job worker, say) with the app's settings, pinned
        like the server by default ("client", a CPU list, or None otherwise),
        its output to `log` (default: discarded), stopped on exit."""
        chosen = {"server": self.pinning.server, "client": self.pinning.client}.get(
            cpus or "", cpus
        )
        output = log.open("wb") if log is not None else subprocess.DEVNULL
        popen = subprocess.Popen(
            pinned(list(command), chosen),
            env={**os.environ, **self.env, **(env or {})},
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield popen
        finally:
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait()
            if not isinstance(output, int):
                output.close()

    async def owner_headers(self) -> dict[str, str]:
        """Bearer headers of the bench tenant's owner (the common case)."""
        return self.bearer((await self.tenant()).owner)
