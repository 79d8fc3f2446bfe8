"""The rules of jobs: creation (schema-validated, idempotent, atomic with the
request), cancel, retry, delete, logs, artifacts, statistics and batches."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import audit_service
from backend.auth.principal import Principal
from backend.jobs.models import FINISHED, Batch, Job, JobArtifact, JobLog, JobStatus
from backend.jobs.repository import BatchRepository, JobLogRepository, JobRepository
from backend.jobs.schemas import (
    ArtifactOut,
    BatchCreate,
    BatchOut,
    JobCreate,
    JobOut,
    JobStats,
    JobTypeOut,
)
from backend.jobs.types import JobType, registry
from backend.kit.db import current_tenant_id
from backend.kit.errors import DossierError, NotFound, PermissionDenied, ValidationFailed
from backend.kit.events import emit
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.references import is_live
from backend.kit.request_context import current_request_id
from backend.kit.storage import active_storage, delete_after_commit
from backend.settings import Settings

WEBHOOK_JOB_TYPE = "webhook.deliver"
# Internal jobs (webhook deliveries) are the tenant's to see and touch only
# with the permission of the feature that runs them.
INTERNAL_JOBS_PERMISSION = "webhooks:manage"


def _check_internal(principal: Principal, job: Job) -> None:
    job_type = registry.get(job.type)
    internal = job_type.internal if job_type is not None else job.type == WEBHOOK_JOB_TYPE
    if internal and not principal.has(INTERNAL_JOBS_PERMISSION):
        raise PermissionDenied(
            f"{job.type} jobs are internal: they need {INTERNAL_JOBS_PERMISSION}"
        )


class InvalidTransition(DossierError):
    status, code = 409, "invalid_transition"


class IdempotencyConflict(DossierError):
    status, code = 409, "idempotency_conflict"


def _field_error(loc: list[str | int], message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": loc, "msg": message, "type": "value_error"}])


def _request_hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_out(job: Job, artifacts: list[JobArtifact] | None = None) -> JobOut:
    out = JobOut.model_validate(job)
    out.cancel_requested = job.cancel_requested_at is not None
    out.artifacts = [ArtifactOut.model_validate(a) for a in artifacts or []]
    return out


def job_event(job: Job) -> dict[str, Any]:
    return {
        "job_id": str(job.id),
        "type": job.type,
        "status": job.status,
        "document_id": str(job.document_id) if job.document_id else None,
        "case_id": str(job.case_id) if job.case_id else None,
        "batch_id": str(job.batch_id) if job.batch_id else None,
    }


@dataclass(frozen=True, slots=True)
class Created:
    job: Job
    created: bool  # False: an earlier request with the same Idempotency-Key


class JobService:
    # ------------------------------------------------------------------ types
    def job_types(self) -> list[JobTypeOut]:
        return [
            JobTypeOut(
                name=t.name,
                description=t.description,
                payload_schema=t.payload_schema,
                requires=list(t.requires),
            )
            for t in registry.public()
        ]

    def _public_type(self, name: str) -> JobType:
        job_type = registry.get(name)
        if job_type is None or job_type.internal:
            known = ", ".join(t.name for t in registry.public())
            raise _field_error(["body", "type"], f"Unknown job type; known types: {known}")
        return job_type

    async def _check_references(
        self,
        session: AsyncSession,
        job_type: JobType,
        payload: dict[str, Any],
        document_id: UUID | None,
        case_id: UUID | None,
        loc: list[str | int],
    ) -> None:
        errors = job_type.payload_errors(payload)
        if errors:
            for error in errors:
                error["loc"] = [*loc, *error["loc"][2:]]
            raise ValidationFailed(
                "The payload does not match the job type's schema", errors=errors
            )
        if "document" in job_type.requires and document_id is None:
            raise _field_error([*loc, "document_id"], f"{job_type.name} needs a document_id")
        if "case" in job_type.requires and case_id is None:
            raise _field_error([*loc, "case_id"], f"{job_type.name} needs a case_id")
        if document_id is not None and not await is_live(session, "document", document_id):
            raise NotFound("Document not found")
        if case_id is not None and not await is_live(session, "case", case_id):
            raise NotFound("Case not found")

    # ----------------------------------------------------------------- create
    async def create_job(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        body: JobCreate,
        idempotency_key: str | None = None,
    ) -> Created:
        job_type = self._public_type(body.type)
        repository = JobRepository(session)
        request_hash = _request_hash(body) if idempotency_key else None
        if idempotency_key:
            if len(idempotency_key) > 255:
                raise _field_error(["header", "Idempotency-Key"], "at most 255 characters")
            earlier = await self._idempotent_match(session, settings, idempotency_key, request_hash)
            if earlier is not None:
                return Created(earlier, created=False)
        await self._check_references(
            session, job_type, body.payload, body.document_id, body.case_id, ["body", "payload"]
        )
        job = Job(
            type=body.type,
            payload=body.payload,
            document_id=body.document_id,
            case_id=body.case_id,
            priority=body.priority,
            max_attempts=body.max_attempts or settings.job_default_max_attempts,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            request_id=current_request_id(),
            created_by=principal.id,
        )
        if idempotency_key:
            try:
                async with session.begin_nested():
                    await repository.add(job)
            except IntegrityError:
                # A concurrent request with the same key won the race.
                earlier = await self._idempotent_match(
                    session, settings, idempotency_key, request_hash
                )
                if earlier is None:
                    raise
                return Created(earlier, created=False)
        else:
            await repository.add(job)
        await self._log(session, job, f"Created by {principal.kind.value} {principal.id}")
        await self._queued(session, job)
        await audit_service.record(
            session,
            principal,
            "job.created",
            "job",
            job.id,
            {"type": job.type, "priority": job.priority},
        )
        return Created(job, created=True)

    async def _idempotent_match(
        self, session: AsyncSession, settings: Settings, key: str, request_hash: str | None
    ) -> Job | None:
        repository = JobRepository(session)
        earlier = await repository.by_idempotency_key(key)
        if earlier is None:
            return None
        expiry = earlier.created_at + timedelta(seconds=settings.job_idempotency_ttl_seconds)
        if expiry < datetime.now(UTC):
            earlier.idempotency_key = None  # expired: the key is free again
            await session.flush()
            return None
        if earlier.request_hash != request_hash:
            raise IdempotencyConflict(
                "This Idempotency-Key was used with a different request",
                existing_id=str(earlier.id),
            )
        return earlier

    async def _queued(self, session: AsyncSession, job: Job) -> None:
        await JobRepository(session).notify_workers()
        emit(session, "job.queued", job_event(job), webhooks=job.type != WEBHOOK_JOB_TYPE)

    async def enqueue(
        self,
        session: AsyncSession,
        job_type: str,
        payload: dict[str, Any],
        *,
        tenant_id: UUID | None = None,
        document_id: UUID | None = None,
        case_id: UUID | None = None,
        priority: int = 0,
        max_attempts: int = 3,
        created_by: UUID | None = None,
    ) -> Job:
        """Queue a job from within another domain's transaction (no request
        body, no idempotency): atomic with the change that asked for it."""
        job = Job(
            type=job_type,
            payload=payload,
            tenant_id=tenant_id or current_tenant_id(),
            document_id=document_id,
            case_id=case_id,
            priority=priority,
            max_attempts=max_attempts,
            request_id=current_request_id(),
            created_by=created_by,
        )
        await JobRepository(session).add(job)
        await JobRepository(session).notify_workers()
        emit(
            session,
            "job.queued",
            job_event(job),
            tenant_id=job.tenant_id,
            webhooks=job_type != WEBHOOK_JOB_TYPE,
        )
        return job

    # ------------------------------------------------------------------ reads
    async def list_jobs(
        self,
        session: AsyncSession,
        query: ListQuery,
        filters: dict[str, Any],
        principal: Principal | None = None,
    ) -> tuple[PageResult[Job], dict[UUID, list[JobArtifact]]]:
        """Internal job types (webhook delivery) are listed only to callers
        who manage what they serve (`INTERNAL_JOBS_PERMISSION`)."""
        repository = JobRepository(session)
        stmt = repository.filtered(filters)
        if principal is not None and not principal.has(INTERNAL_JOBS_PERMISSION):
            internal = registry.internal_names()
            if internal:
                stmt = stmt.where(Job.type.not_in(internal))
        page = await repository.paginate(stmt, query)
        artifacts = await repository.artifacts_of([job.id for job in page.items])
        return page, artifacts

    async def get_job(self, session: AsyncSession, job_id: UUID) -> JobOut:
        repository = JobRepository(session)
        job = await repository.get_or_raise(job_id)
        artifacts = await repository.artifacts_of([job.id])
        return job_out(job, artifacts.get(job.id))

    async def logs(
        self, session: AsyncSession, job_id: UUID, query: ListQuery
    ) -> PageResult[JobLog]:
        await JobRepository(session).get_or_raise(job_id)
        repository = JobLogRepository(session)
        return await repository.paginate(repository.select().where(JobLog.job_id == job_id), query)

    async def artifact(self, session: AsyncSession, job_id: UUID, name: str) -> JobArtifact:
        repository = JobRepository(session)
        await repository.get_or_raise(job_id)
        artifact = await repository.artifact(job_id, name)
        if artifact is None:
            raise NotFound("Artifact not found")
        return artifact

    async def count_by_status(self, session: AsyncSession) -> dict[str, int]:
        """Live jobs by status in the current scope: one tenant, or every
        tenant in a system scope (admin stats)."""
        return (await self._counts(session))[0]

    def artifact_bytes(self, tenant_id: Any) -> Any:
        """Usage `storage_bytes` share: the job artifacts of the tenant
        `tenant_id` (an expression), as a scalar subquery."""
        return JobRepository.artifact_bytes_of(tenant_id)

    def running_jobs(self, tenant_id: Any) -> Any:
        """The tenant's usage `running_jobs`, as a scalar subquery over the
        tenant whose id is the expression `tenant_id`."""
        return JobRepository.running_count(tenant_id)

    async def _counts(
        self, session: AsyncSession
    ) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        by_status = {status.value: 0 for status in JobStatus}
        by_type: dict[str, dict[str, int]] = {}
        for job_type, status, count in await JobRepository(session).counts():
            by_status[status] = by_status.get(status, 0) + count
            by_type.setdefault(job_type, {})[status] = count
        return by_status, by_type

    async def stats(self, session: AsyncSession) -> JobStats:
        repository = JobRepository(session)
        by_status, by_type = await self._counts(session)
        oldest = await repository.oldest_queued()
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
        return JobStats(by_status=by_status, by_type=by_type, oldest_queued_age_seconds=age)

    # -------------------------------------------------------------- commands
    async def cancel_job(self, session: AsyncSession, principal: Principal, job_id: UUID) -> JobOut:
        repository = JobRepository(session)
        job = await repository.get_for_update(job_id)
        if job is None:
            raise NotFound("Job not found")
        _check_internal(principal, job)
        if job.status in FINISHED:
            raise InvalidTransition(f"The job is already {job.status}")
        now = datetime.now(UTC)
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.CANCELLED
            job.finished_at = now
            job.error = "Cancelled"
            await session.flush()
            emit(session, "job.cancelled", job_event(job), webhooks=job.type != WEBHOOK_JOB_TYPE)
        elif job.cancel_requested_at is None:
            job.cancel_requested_at = now  # the handler stops at its next check
            await session.flush()
        await self._log(session, job, f"Cancel requested by {principal.kind.value} {principal.id}")
        await audit_service.record(
            session, principal, "job.cancelled", "job", job.id, {"status": job.status}
        )
        return await self.get_job(session, job.id)

    async def retry_job(self, session: AsyncSession, principal: Principal, job_id: UUID) -> JobOut:
        repository = JobRepository(session)
        job = await repository.get_for_update(job_id)
        if job is None:
            raise NotFound("Job not found")
        _check_internal(principal, job)
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise InvalidTransition(
                f"Only failed or cancelled jobs can be retried (job is {job.status})"
            )
        before = job.status
        job.status = JobStatus.QUEUED
        job.attempts = 0
        job.progress = 0
        job.step = None
        job.error = None
        job.result = None
        job.cancel_requested_at = None
        job.started_at = None
        job.finished_at = None
        job.run_after = datetime.now(UTC)
        await session.flush()
        await self._log(
            session, job, f"Retried by {principal.kind.value} {principal.id} (was {before})"
        )
        await self._queued(session, job)
        await audit_service.record(
            session,
            principal,
            "job.retried",
            "job",
            job.id,
            {"status": {"before": before, "after": "queued"}},
        )
        return await self.get_job(session, job.id)

    async def delete_job(self, session: AsyncSession, principal: Principal, job_id: UUID) -> None:
        repository = JobRepository(session)
        job = await repository.get_for_update(job_id)
        if job is None:
            raise NotFound("Job not found")
        _check_internal(principal, job)
        if job.status == JobStatus.RUNNING:
            raise InvalidTransition("A running job cannot be deleted; cancel it first")
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.CANCELLED
            job.finished_at = datetime.now(UTC)
            job.error = "Deleted while queued"
            emit(session, "job.cancelled", job_event(job), webhooks=job.type != WEBHOOK_JOB_TYPE)
        await repository.soft_delete(job, by=principal.id)
        await audit_service.record(session, principal, "job.deleted", "job", job.id)

    async def purge(self, session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
        """Admin purge: jobs deleted before `cutoff` and those of purged
        tenants; their artifact blobs are deleted once the purge commits."""
        purged, keys = await JobRepository(session).purge(cutoff, tenant_ids)
        storage = active_storage()
        for key in keys:
            delete_after_commit(session, storage, key)
        return purged

    async def _log(
        self, session: AsyncSession, job: Job, message: str, level: str = "info"
    ) -> None:
        session.add(
            JobLog(
                tenant_id=job.tenant_id,
                job_id=job.id,
                attempt=job.attempts,
                level=level,
                message=message,
                request_id=current_request_id(),
            )
        )
        await session.flush()

    # ---------------------------------------------------------------- batches
    async def create_batch(
        self, session: AsyncSession, settings: Settings, principal: Principal, body: BatchCreate
    ) -> tuple[Batch, list[UUID]]:
        job_type = self._public_type(body.type)
        if len(body.items) > settings.batch_max_items:
            raise _field_error(["body", "items"], f"at most {settings.batch_max_items} items")
        for index, item in enumerate(body.items):
            await self._check_references(
                session,
                job_type,
                item.payload,
                item.document_id,
                item.case_id,
                ["body", "items", index, "payload"],
            )
        batch = await BatchRepository(session).create(
            type=body.type, total=len(body.items), created_by=principal.id
        )
        jobs = [
            Job(
                tenant_id=batch.tenant_id,
                type=body.type,
                payload=item.payload,
                document_id=item.document_id,
                case_id=item.case_id,
                batch_id=batch.id,
                priority=body.priority,
                max_attempts=body.max_attempts or settings.job_default_max_attempts,
                request_id=current_request_id(),
                created_by=principal.id,
            )
            for item in body.items
        ]
        session.add_all(jobs)
        await session.flush()
        await JobRepository(session).notify_workers()
        for job in jobs:
            emit(session, "job.queued", job_event(job))
        await audit_service.record(
            session,
            principal,
            "batch.created",
            "batch",
            batch.id,
            {"type": body.type, "total": len(jobs)},
        )
        return batch, [job.id for job in jobs]

    async def get_batch(self, session: AsyncSession, batch_id: UUID) -> BatchOut:
        batch = await BatchRepository(session).get_or_raise(batch_id)
        repository = JobRepository(session)
        by_status = {status.value: 0 for status in JobStatus}
        for _, status, count in await repository.counts(batch_id=batch.id):
            by_status[status] += count
        finished = sum(by_status[status.value] for status in FINISHED)
        return BatchOut(
            id=batch.id,
            type=batch.type,
            total=batch.total,
            by_status=by_status,
            progress=await repository.batch_progress(batch.id),
            done=finished >= batch.total,
            created_at=batch.created_at,
        )


job_service = JobService()
