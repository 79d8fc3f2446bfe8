"""What a handler gets: its job, progress and log reporting, cancellation,
transactions in the job's tenant scope, a pool for CPU-bound work, and
artifact storage."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.jobs.types import PermanentJobError
from backend.kit.db import Database
from backend.kit.events import emit
from backend.kit.models import uuid7
from backend.kit.sandbox import SandboxError, parser_limits, run_sandboxed
from backend.kit.storage import StagedObject, commit_after_commit, delete_after_commit, key_for
from backend.settings import Settings
from backend.tenants.storage_quota import QuotaExceeded, check_storage_quota

logger = logging.getLogger("dossier.worker.job")


@contextmanager
def quota_fails_the_job() -> Iterator[None]:
    """A storage-quota refusal inside fails the job for good (retrying would
    not free the space), with the quota and the bytes used in its error."""
    try:
        yield
    except QuotaExceeded as error:
        raise PermanentJobError(
            f"{error.detail} of {error.extra['storage_bytes']} bytes "
            f"({error.extra['used_bytes']} bytes used)"
        ) from None


T = TypeVar("T")


class JobCancelled(Exception):
    """Raised at a progress report or check once a cancel was requested."""


class LeaseLost(Exception):
    """Another worker took the job over (this worker's lease expired)."""


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    id: UUID
    tenant_id: UUID
    type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    document_id: UUID | None = None
    case_id: UUID | None = None
    batch_id: UUID | None = None
    request_id: str | None = None
    created_by: UUID | None = None

    @classmethod
    def from_row(cls, row: Any) -> JobSnapshot:
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            type=row.type,
            payload=dict(row.payload or {}),
            attempt=row.attempts,
            max_attempts=row.max_attempts,
            document_id=row.document_id,
            case_id=row.case_id,
            batch_id=row.batch_id,
            request_id=row.request_id,
            created_by=row.created_by,
        )


_PROGRESS = text(
    "UPDATE jobs SET progress = :progress, step = COALESCE(:step, step), updated_at = now() "
    "WHERE id = :id AND locked_by = :worker AND status = 'running' "
    "RETURNING cancel_requested_at"
)
_CHECK = text(
    "SELECT cancel_requested_at, locked_by = :worker AND status = 'running' AS owned "
    "FROM jobs WHERE id = :id"
)
_LOG = text(
    "INSERT INTO job_logs (id, tenant_id, job_id, attempt, level, message, request_id) "
    "VALUES (:id, :tenant, :job, :attempt, :level, :message, :request_id)"
)


@dataclass
class JobContext:
    job: JobSnapshot
    database: Database
    settings: Settings
    worker_id: str
    executor: Executor | None = None
    storage: Any = None
    cancel_requested: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction in the job's tenant scope (the runner entered it)."""
        async with self.database.transaction() as session:
            yield session

    async def progress(self, percent: float, step: str | None = None) -> None:
        """Record progress (0-100) and publish `job.progress`; stops the job
        here if a cancel was requested."""
        value = max(0, min(100, int(percent)))
        async with self.database.transaction() as session:
            row = (
                await session.execute(
                    _PROGRESS,
                    {"progress": value, "step": step, "id": self.job.id, "worker": self.worker_id},
                )
            ).first()
            if row is None:
                raise LeaseLost(str(self.job.id))
            data: dict[str, Any] = {"job_id": str(self.job.id), "type": self.job.type}
            data.update(progress=value, step=step)
            emit(session, "job.progress", data, tenant_id=self.job.tenant_id)
        if row.cancel_requested_at is not None:
            self.cancel_requested = True
        if self.cancel_requested:
            raise JobCancelled(str(self.job.id))

    async def check_cancelled(self) -> None:
        """Raise `JobCancelled` if a cancel was requested (cheap: one SELECT)."""
        if not self.cancel_requested:
            async with self.database.transaction() as session:
                row = (
                    await session.execute(_CHECK, {"id": self.job.id, "worker": self.worker_id})
                ).first()
            if row is None or not row.owned:
                raise LeaseLost(str(self.job.id))
            self.cancel_requested = row.cancel_requested_at is not None
        if self.cancel_requested:
            raise JobCancelled(str(self.job.id))

    async def log(self, message: str, level: str = "info") -> None:
        """A line of the job's log (`GET /jobs/{id}/logs`)."""
        async with self.database.transaction() as session:
            await write_log(session, self.job, message, level)
        logger.log(
            logging.getLevelName(level.upper()) if level != "warning" else logging.WARNING,
            message,
            extra={"job_id": str(self.job.id), "job_type": self.job.type},
        )

    async def store_artifact(
        self, name: str, chunks: AsyncIterable[bytes], *, content_type: str
    ) -> dict[str, Any]:
        """Stream `chunks` into storage as the job's artifact `name`
        (downloaded at `GET /jobs/{id}/artifacts/{name}`); replaces an artifact
        of the same name from an earlier attempt, whose blob is deleted. The
        artifact counts in the tenant's storage quota: past it, the job fails
        (permanently) and nothing is kept."""
        digest = hashlib.sha256()

        async def hashed() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                digest.update(chunk)
                yield chunk

        key = key_for("tenants", self.job.tenant_id, "jobs", self.job.id, "artifacts", uuid4().hex)
        staged = await self.storage.put_stream(key, hashed(), content_type=content_type)
        async with self.database.transaction() as session:
            # Made visible at commit, discarded if the transaction rolls back.
            commit_after_commit(session, self.storage, staged)
            await self._replace_artifact(session, name, staged, content_type, digest.hexdigest())
        return {"name": name, "size": staged.size, "content_type": content_type}

    async def _replace_artifact(
        self, session: AsyncSession, name: str, staged: StagedObject, content_type: str, sha: str
    ) -> None:
        replaced = (
            await session.execute(
                text(
                    "DELETE FROM job_artifacts WHERE job_id = :job AND name = :name "
                    "RETURNING storage_key"
                ),
                {"job": self.job.id, "name": name},
            )
        ).scalars()
        for old_key in replaced:
            delete_after_commit(session, self.storage, old_key)
        await self.check_storage_quota(
            session, staged.size, what=f"The artifact {name!r} ({staged.size} bytes)"
        )
        await session.execute(
            text(
                "INSERT INTO job_artifacts (id, tenant_id, job_id, name, content_type, size, "
                "sha256, storage_key) "
                "VALUES (:id, :tenant, :job, :name, :type, :size, :sha, :key)"
            ),
            {
                "id": uuid4(),
                "tenant": self.job.tenant_id,
                "job": self.job.id,
                "name": name,
                "type": content_type,
                "size": staged.size,
                "sha": sha,
                "key": staged.key,
            },
        )

    async def check_storage_quota(
        self, session: AsyncSession, incoming: int, *, what: str, lock: bool = True
    ) -> None:
        """Fail the job for good when `incoming` more bytes would pass the
        tenant's storage quota; `lock`: under the tenant's storage lock, as
        every writer checks (without it the check only refuses early)."""
        with quota_fails_the_job():
            await check_storage_quota(
                session, self.settings, self.job.tenant_id, incoming, what=what, lock=lock
            )

    async def run_blocking(self, function: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound or blocking work off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, function, *args)

    async def run_sandboxed(self, function: Callable[..., T], *args: Any) -> T:
        """Run a parser of untrusted input in a child process limited to
        `PARSER_MEMORY_BYTES` and `PARSER_CPU_SECONDS` (`kit.sandbox`): a
        crash or blow-up fails this job, as permanent, never the worker."""
        try:
            return await run_sandboxed(function, *args, limits=parser_limits(self.settings))
        except SandboxError as exc:
            raise PermanentJobError(f"The file could not be parsed: {exc}") from None


async def write_log(
    session: AsyncSession, job: JobSnapshot, message: str, level: str = "info"
) -> None:
    await session.execute(
        _LOG,
        {
            "id": uuid7(),
            "tenant": job.tenant_id,
            "job": job.id,
            "attempt": job.attempt,
            "level": level,
            "message": message[:10_000],
            "request_id": job.request_id,
        },
    )
