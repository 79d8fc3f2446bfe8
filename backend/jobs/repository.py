"""SQL of the jobs domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, or_, select, text

from backend.jobs.models import NOTIFY_CHANNEL, Batch, Job, JobArtifact, JobLog, JobStatus
from backend.kit.repository import Repository, tenant_total


class JobRepository(Repository[Job]):
    model = Job
    resource_name = "Job"

    async def get_for_update(self, job_id: UUID) -> Job | None:
        stmt = self.select().where(Job.id == job_id).with_for_update()
        found: Job | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def by_idempotency_key(self, key: str) -> Job | None:
        stmt = self._tenant_filter(select(Job)).where(Job.idempotency_key == key)
        found: Job | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    def filtered(self, filters: dict[str, Any]) -> Select[Any]:
        stmt = self.select()
        for name, value in filters.items():
            if value is not None:
                stmt = stmt.where(getattr(Job, name) == value)
        return stmt

    async def notify_workers(self) -> None:
        """Wake idle workers once this transaction commits (NOTIFY is transactional)."""
        await self.session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))

    async def artifacts_of(self, job_ids: list[UUID]) -> dict[UUID, list[JobArtifact]]:
        if not job_ids:
            return {}
        stmt = select(JobArtifact).where(JobArtifact.job_id.in_(job_ids)).order_by(JobArtifact.name)
        found: dict[UUID, list[JobArtifact]] = {}
        for artifact in (await self.session.execute(stmt)).scalars():
            found.setdefault(artifact.job_id, []).append(artifact)
        return found

    @staticmethod
    def artifact_bytes_of(tenant_id: Any) -> Any:
        """Bytes of the job artifacts of the tenant `tenant_id` (an
        expression), as a scalar subquery."""
        return tenant_total(JobArtifact.size, JobArtifact.tenant_id, tenant_id)

    async def purge(self, cutoff: datetime, tenant_ids: list[UUID]) -> tuple[int, list[str]]:
        """Hard-delete jobs soft-deleted before `cutoff` and every job of the
        tenants being purged (logs and artifacts go by cascade); the count
        and the artifacts' storage keys (system scope)."""
        condition = Job.deleted_at < cutoff
        if tenant_ids:
            condition = or_(condition, Job.tenant_id.in_(tenant_ids))
        doomed = select(Job.id).where(condition)
        keys = list(
            (
                await self.session.execute(
                    select(JobArtifact.storage_key).where(JobArtifact.job_id.in_(doomed))
                )
            ).scalars()
        )
        result = await self.session.execute(delete(Job).where(condition).returning(Job.id))
        return len(result.all()), keys

    async def artifact(self, job_id: UUID, name: str) -> JobArtifact | None:
        stmt = select(JobArtifact).where(JobArtifact.job_id == job_id, JobArtifact.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    @staticmethod
    def running_count(tenant_id: Any) -> Any:
        """Live running jobs of the tenant `tenant_id` (an expression), as a
        scalar subquery."""
        return (
            select(func.count())
            .where(
                Job.tenant_id == tenant_id,
                Job.status == JobStatus.RUNNING,
                Job.deleted_at.is_(None),
            )
            .scalar_subquery()
        )

    async def counts(self, *, batch_id: UUID | None = None) -> list[tuple[str, str, int]]:
        """Live jobs by type and status; for a batch, every job it made (a
        deleted one was finished or cancelled when deleted, and still counts
        towards the batch's total)."""
        stmt = (
            self.select(include_deleted=batch_id is not None)
            .with_only_columns(Job.type, Job.status, func.count())
            .group_by(Job.type, Job.status)
        )
        if batch_id is not None:
            stmt = stmt.where(Job.batch_id == batch_id)
        return [(row[0], row[1], row[2]) for row in (await self.session.execute(stmt)).all()]

    async def oldest_queued(self) -> datetime | None:
        stmt = (
            self.select()
            .with_only_columns(func.min(Job.created_at))
            .where(Job.status == JobStatus.QUEUED)
        )
        value: datetime | None = await self.session.scalar(stmt)
        return value

    async def batch_progress(self, batch_id: UUID) -> int:
        stmt = (
            self.select(include_deleted=True)
            .with_only_columns(
                func.coalesce(
                    func.avg(
                        text(
                            "CASE WHEN status IN ('succeeded', 'failed', 'cancelled') "
                            "THEN 100 ELSE progress END"
                        )
                    ),
                    0,
                )
            )
            .where(Job.batch_id == batch_id)
        )
        value = await self.session.scalar(stmt)
        return int(value or 0)


class JobLogRepository(Repository[JobLog]):
    model = JobLog
    resource_name = "Job log"


class BatchRepository(Repository[Batch]):
    model = Batch
    resource_name = "Batch"
