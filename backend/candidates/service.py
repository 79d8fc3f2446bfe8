"""Business rules of the CV workload: importing files and archives as
documents with `cv.parse` jobs, creating or updating candidates from parsed
CVs (one candidate per person, edits kept), editing, merging, re-parsing,
tenant skills, requisitions and their matches."""

from __future__ import annotations

import asyncio
import re
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor, audit_service
from backend.audit.soft_delete import SoftDeletion
from backend.candidates import archive
from backend.candidates.cv_parser import ParsedCV, normalise_phone, parse_cv
from backend.candidates.dates import total_months
from backend.candidates.matching import match_params
from backend.candidates.models import Candidate, Requisition, TenantSkill
from backend.candidates.repository import (
    CandidateRepository,
    RequisitionRepository,
    TenantSkillRepository,
    like_escape,
)
from backend.candidates.schemas import (
    PROFILE_FIELDS,
    Breakdown,
    CandidateMerge,
    CandidateUpdate,
    ExperienceFit,
    ImportAnswer,
    ImportItem,
    MatchCandidate,
    MatchOut,
    PreferredSkills,
    RequiredSkills,
    RequisitionCreate,
    RequisitionUpdate,
    TenantSkillCreate,
)
from backend.candidates.taxonomy import SkillMatcher, matcher_for
from backend.documents.models import Document
from backend.documents.schemas import DocumentMetadata
from backend.documents.service import DuplicateDocument, document_service
from backend.jobs.models import Job
from backend.jobs.schemas import BatchCreate, BatchItem
from backend.jobs.service import job_service
from backend.kit.db import current_tenant_id
from backend.kit.errors import Conflict, DossierError, NotFound, ValidationFailed
from backend.kit.events import emit
from backend.kit.http import check_if_match
from backend.kit.pagination import ListQuery, PageResult
from backend.settings import Settings
from backend.tenants.service import tenant_service

CV_PARSE = "cv.parse"
# Parts of a DOCX/XLSX (a ZIP too): such a file is a document, not an archive.
_OFFICE_MARKERS = ("[Content_Types].xml",)


def _field_error(loc: list[str | int], message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": loc, "msg": message, "type": "value_error"}])


def _tenant() -> UUID:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise RuntimeError("candidates belong to a tenant")
    return tenant_id


def candidate_event(candidate: Candidate, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(candidate.id),
        "name": candidate.name,
        "status": candidate.status,
        "document_ids": [str(d) for d in candidate.document_ids],
        **extra,
    }


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    return list(dict.fromkeys([*first, *second]))


@dataclass(slots=True)
class Upload:
    """A file of an import request, spooled to disk while the form was read."""

    filename: str
    file: IO[bytes]
    content_type: str | None = None


@dataclass(slots=True)
class _Source:
    filename: str
    chunks: AsyncIterator[bytes] | None
    error: str | None = None


async def _file_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    file.seek(0)
    while chunk := await asyncio.to_thread(file.read, archive.READ_CHUNK):
        yield chunk


async def _entry_chunks(handle: zipfile.ZipFile, info: zipfile.ZipInfo) -> AsyncIterator[bytes]:
    iterator: Iterator[bytes] = archive.read_entry(handle, info)
    while chunk := await asyncio.to_thread(next, iterator, b""):
        yield chunk


CANDIDATE_DELETION = SoftDeletion(
    CandidateRepository, "candidate", "candidate.deleted", "candidate.restored"
)
REQUISITION_DELETION = SoftDeletion(
    RequisitionRepository, "requisition", "requisition.deleted", "requisition.restored"
)


class CandidateService:
    # ----------------------------------------------------------- parsing setup
    async def matcher(self, session: AsyncSession) -> SkillMatcher:
        """The taxonomy plus the tenant's own skills."""
        own = await TenantSkillRepository(session).live()
        return matcher_for(tuple((skill.name, tuple(skill.aliases)) for skill in own))

    async def region(self, session: AsyncSession, settings: Settings) -> str | None:
        """The tenant's `country` setting (ISO 3166 alpha-2) for phone numbers
        written without a country code, else `CANDIDATES_DEFAULT_REGION`."""
        tenant = await tenant_service.get_tenant(session, _tenant())
        country = (tenant.settings or {}).get("country")
        if isinstance(country, str) and re.fullmatch(r"[A-Za-z]{2}", country):
            return country.upper()
        return settings.candidates_default_region

    # ------------------------------------------------------------------ import
    async def import_files(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        uploads: list[Upload],
        *,
        tags: list[str],
        requisition_id: UUID | None,
    ) -> ImportAnswer:
        """Every file (and every entry of every archive) becomes a document (an
        existing one when the tenant already has the content) and a `cv.parse`
        job in one batch. Archives are checked before anything is stored."""
        if requisition_id is not None:
            await self._live_requisition(session, requisition_id, ["body", "requisition_id"])
        archives: list[tuple[Upload, zipfile.ZipFile]] = []
        try:
            for upload in uploads:
                upload.file.seek(0)
                if archive.is_zip(upload.file.read(4)):
                    upload.file.seek(0)
                    handle = archive.open_archive(upload.file)
                    if any(name in handle.namelist() for name in _OFFICE_MARKERS):
                        handle.close()
                        continue
                    archives.append((upload, handle))
            inspected = {
                id(upload): archive.inspect(
                    handle,
                    max_total_bytes=settings.max_upload_bytes,
                    max_entries=settings.import_max_entries,
                    max_ratio=settings.import_max_compression_ratio,
                )
                for upload, handle in archives
            }
            handles = {id(upload): handle for upload, handle in archives}
            sources: list[_Source] = []
            for upload in uploads:
                if id(upload) not in inspected:
                    sources.append(_Source(upload.filename, _file_chunks(upload.file)))
                    continue
                handle = handles[id(upload)]
                for info, entry in inspected[id(upload)]:
                    name = f"{upload.filename}/{entry.path}"
                    chunks = None if entry.error else _entry_chunks(handle, info)
                    sources.append(_Source(name, chunks, entry.error))
            if not sources:
                raise _field_error(["body", "files"], "No file to import")
            if len([s for s in sources if s.error is None]) > settings.batch_max_items:
                raise _field_error(
                    ["body", "files"],
                    f"At most {settings.batch_max_items} files are imported in one request",
                )
            items, documents = await self._store(session, settings, actor, sources)
        finally:
            for _, handle in archives:
                handle.close()
        batch_id = None
        if documents:
            payload_extra: dict[str, Any] = {}
            if tags:
                payload_extra["tags"] = tags
            if requisition_id is not None:
                payload_extra["requisition_id"] = str(requisition_id)
            batch, job_ids = await job_service.create_batch(
                session,
                settings,
                actor,  # type: ignore[arg-type]
                BatchCreate(
                    type=CV_PARSE,
                    items=[
                        BatchItem(
                            payload={"document_id": str(document_id), **payload_extra},
                            document_id=document_id,
                        )
                        for document_id in documents
                    ],
                ),
            )
            batch_id = batch.id
            jobs = dict(zip(documents, job_ids, strict=True))
            for item in items:
                if item.document_id is not None:
                    item.job_id = jobs[item.document_id]
        return ImportAnswer(batch_id=batch_id, items=items)

    async def _store(
        self, session: AsyncSession, settings: Settings, actor: Actor, sources: list[_Source]
    ) -> tuple[list[ImportItem], list[UUID]]:
        items: list[ImportItem] = []
        documents: list[UUID] = []  # in order, each once
        for source in sources:
            if source.chunks is None:
                items.append(ImportItem(filename=source.filename, error=source.error))
                continue
            try:
                staged = await document_service.stage_file(
                    session,
                    settings,
                    source=source.chunks,
                    filename=source.filename.rsplit("/", 1)[-1],
                    claimed_type=None,
                )
                try:
                    document = await document_service.create_document(
                        session, settings, actor, staged, DocumentMetadata(tags=["cv"])
                    )
                    document_id = document.id
                except DuplicateDocument as duplicate:
                    document_id = UUID(str(duplicate.extra["existing_id"]))
            except DossierError as error:
                items.append(ImportItem(filename=source.filename, error=error.detail))
                continue
            except (zipfile.BadZipFile, OSError) as error:
                items.append(ImportItem(filename=source.filename, error=f"Unreadable: {error}"))
                continue
            items.append(ImportItem(filename=source.filename, document_id=document_id))
            if document_id not in documents:
                documents.append(document_id)
        return items, documents

    # ------------------------------------------------------------- ingestion
    async def document_text(self, session: AsyncSession, document_id: UUID) -> Document:
        """The document with its extracted text loaded."""
        document = await document_service.get(session, document_id)
        await session.refresh(document, attribute_names=["extracted_text"])
        return document

    def parse(
        self, text: str, *, region: str | None, matcher: SkillMatcher, today: datetime
    ) -> ParsedCV:
        return parse_cv(text, region=region, matcher=matcher, today=today.date())

    async def ingest(
        self,
        session: AsyncSession,
        document: Document,
        parsed: ParsedCV,
        text: str,
        *,
        tags: list[str] | None = None,
        requisition_id: UUID | None = None,
    ) -> tuple[Candidate, bool]:
        """Create the candidate of a parsed CV, or update the one that already
        has this document or shares an e-mail or phone with it. The profile
        follows the newest CV; edited fields stay as edited; contact details,
        skills, documents, tags and requisitions accumulate."""
        repository = CandidateRepository(session)
        await repository.lock_tenant_candidates(_tenant())
        profile = parsed.profile()
        now = datetime.now(UTC)
        candidate = await repository.with_document(document.id)
        if candidate is None:
            matches = await repository.with_contacts(parsed.emails, parsed.phones)
            candidate = matches[0] if matches else None
        extra_tags = tags or []
        requisitions = [requisition_id] if requisition_id else []
        if candidate is None:
            candidate = Candidate(
                **profile,
                tags=extra_tags,
                requisition_ids=requisitions,
                document_ids=[document.id],
                profile_document_id=document.id,
                profile_document_at=document.created_at,
                parsed_at=now,
                cv_text=text,
            )
            await repository.add(candidate)
            await audit_service.record(
                session,
                None,
                "candidate.created",
                "candidate",
                candidate.id,
                {"document_id": str(document.id), "name": candidate.name},
            )
            emit(session, "candidate.created", candidate_event(candidate))
            return candidate, True
        newest = (
            candidate.profile_document_at is None
            or document.id == candidate.profile_document_id
            or document.created_at >= candidate.profile_document_at
        )
        values: dict[str, Any] = {
            "emails": _union(candidate.emails, parsed.emails),
            "phones": _union(candidate.phones, parsed.phones),
            "document_ids": _union(candidate.document_ids, [document.id]),
            "tags": _union(candidate.tags, extra_tags),
            "requisition_ids": _union(candidate.requisition_ids, requisitions),
            "parsed_at": now,
        }
        if newest:
            for name in PROFILE_FIELDS:
                if name not in candidate.edited_fields and name not in ("emails", "phones"):
                    values[name] = profile[name]
            if "experience" not in candidate.edited_fields:
                values["total_experience_months"] = profile["total_experience_months"]
            values["profile_document_id"] = document.id
            values["profile_document_at"] = document.created_at
            values["cv_text"] = text
        elif "skills" not in candidate.edited_fields:
            values["skills"] = _union(candidate.skills, parsed.skills)
        for name in ("emails", "phones"):
            if name in candidate.edited_fields:
                values[name] = getattr(candidate, name)
        await session.refresh(candidate, attribute_names=["cv_text"])
        changes = await repository.update(candidate, values)
        changes.pop("cv_text", None)
        changes.pop("parsed_at", None)
        await audit_service.record(
            session,
            None,
            "candidate.updated",
            "candidate",
            candidate.id,
            {"document_id": str(document.id), "fields": sorted(changes)},
        )
        emit(
            session,
            "candidate.updated",
            candidate_event(candidate, changes=sorted(changes)),
        )
        return candidate, False

    # -------------------------------------------------------------- read/edit
    async def get(
        self, session: AsyncSession, candidate_id: UUID, *, include_deleted: bool = False
    ) -> Candidate:
        return await CandidateRepository(session).get_or_raise(
            candidate_id, include_deleted=include_deleted
        )

    async def list_candidates(
        self,
        session: AsyncSession,
        query: ListQuery,
        *,
        include_deleted: bool = False,
        **filters: Any,
    ) -> PageResult[Candidate]:
        repository = CandidateRepository(session)
        matcher = await self.matcher(session)
        for name in ("skill", "any_skill"):
            if filters.get(name):
                filters[name] = matcher.normalise(filters[name])
        stmt = repository.filtered(include_deleted=include_deleted, filters=filters)
        return await repository.paginate(stmt, query)

    async def update(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        candidate_id: UUID,
        body: CandidateUpdate,
        *,
        if_match: str | None,
    ) -> Candidate:
        repository = CandidateRepository(session)
        candidate = await repository.get_or_raise(candidate_id)
        check_if_match(if_match, candidate.version)
        values = body.model_dump(exclude_unset=True, mode="json")
        for name in ("emails", "phones", "skills", "links", "experience", "education", "tags"):
            if name in values and values[name] is None:
                raise _field_error(["body", name], f"{name} cannot be null")
        if values.get("status") is None:
            values.pop("status", None)
        if "emails" in values:
            values["emails"] = _union([], [e.lower() for e in values["emails"]])
        if "phones" in values:
            region = await self.region(session, settings)
            phones = []
            for index, raw in enumerate(values["phones"]):
                e164 = normalise_phone(raw, region)
                if e164 is None:
                    raise _field_error(["body", "phones", index], f"Not a valid phone: {raw!r}")
                phones.append(e164)
            values["phones"] = _union([], phones)
        if "skills" in values:
            values["skills"] = (await self.matcher(session)).normalise(values["skills"])
        if "experience" in values:
            values["total_experience_months"] = _experience_months(values["experience"])
        edited = [name for name in PROFILE_FIELDS if name in values]
        if edited:
            values["edited_fields"] = _union(candidate.edited_fields, edited)
        changes = await repository.update(candidate, values)
        if changes:
            await audit_service.record(
                session,
                actor,
                "candidate.updated",
                "candidate",
                candidate.id,
                to_jsonable_python(changes),
            )
            emit(session, "candidate.updated", candidate_event(candidate, changes=sorted(changes)))
        return candidate

    async def delete(self, session: AsyncSession, actor: Actor, candidate_id: UUID) -> None:
        candidate = await CANDIDATE_DELETION.delete(session, actor, candidate_id)
        emit(session, "candidate.updated", candidate_event(candidate, changes=["deleted_at"]))

    async def restore(self, session: AsyncSession, actor: Actor, candidate_id: UUID) -> Candidate:
        candidate, restored = await CANDIDATE_DELETION.restore(session, actor, candidate_id)
        if restored:
            emit(session, "candidate.updated", candidate_event(candidate, changes=["deleted_at"]))
        return candidate

    async def merge(self, session: AsyncSession, actor: Actor, body: CandidateMerge) -> Candidate:
        """The target gains the source's e-mails, phones, skills, documents,
        tags and requisitions; the source is soft-deleted."""
        if body.target_id == body.source_id:
            raise _field_error(["body", "source_id"], "A candidate cannot be merged into itself")
        repository = CandidateRepository(session)
        target = await repository.get_or_raise(body.target_id)
        source = await repository.get_or_raise(body.source_id)
        values = {
            name: _union(getattr(target, name), getattr(source, name))
            for name in ("emails", "phones", "skills", "document_ids", "tags", "requisition_ids")
        }
        changes = await repository.update(target, values)
        await repository.soft_delete(source, by=actor.id)
        await audit_service.record(
            session,
            actor,
            "candidate.merged",
            "candidate",
            target.id,
            {"source_id": str(source.id), **to_jsonable_python(changes)},
        )
        emit(
            session,
            "candidate.merged",
            candidate_event(target, source_id=str(source.id)),
        )
        return target

    async def reparse(
        self, session: AsyncSession, settings: Settings, actor: Actor, candidate_id: UUID
    ) -> Job:
        """Queue `cv.parse` of the CV the profile follows."""
        candidate = await CandidateRepository(session).get_or_raise(candidate_id)
        document_id = candidate.profile_document_id or (
            candidate.document_ids[-1] if candidate.document_ids else None
        )
        if document_id is None:
            raise Conflict("The candidate has no CV to parse")
        job = await job_service.enqueue(
            session,
            CV_PARSE,
            {"document_id": str(document_id)},
            document_id=document_id,
            max_attempts=settings.job_default_max_attempts,
            created_by=actor.id,
        )
        await audit_service.record(
            session, actor, "candidate.reparse", "candidate", candidate.id, {"job_id": str(job.id)}
        )
        return job

    # ------------------------------------------------------------ skills
    async def list_skills(self, session: AsyncSession, query: ListQuery) -> PageResult[TenantSkill]:
        repository = TenantSkillRepository(session)
        return await repository.paginate(repository.select(), query)

    async def create_skill(
        self, session: AsyncSession, actor: Actor, body: TenantSkillCreate
    ) -> TenantSkill:
        repository = TenantSkillRepository(session)
        if await repository.by_name(body.name) is not None:
            raise Conflict(f"The skill {body.name!r} exists")
        skill = await repository.create(
            name=body.name, aliases=_union([], body.aliases), created_by=actor.id
        )
        await audit_service.record(
            session,
            actor,
            "candidate_skill.created",
            "candidate_skill",
            skill.id,
            {"name": skill.name, "aliases": skill.aliases},
        )
        return skill

    async def delete_skill(self, session: AsyncSession, actor: Actor, name: str) -> None:
        repository = TenantSkillRepository(session)
        skill = await repository.by_name(name)
        if skill is None:
            raise NotFound("Skill not found")
        await repository.soft_delete(skill, by=actor.id)
        await audit_service.record(
            session, actor, "candidate_skill.deleted", "candidate_skill", skill.id
        )

    async def restore_skill(self, session: AsyncSession, actor: Actor, name: str) -> TenantSkill:
        repository = TenantSkillRepository(session)
        if (live := await repository.by_name(name)) is not None:
            return live
        skill = await repository.by_name(name, include_deleted=True)
        if skill is None:
            raise NotFound("Skill not found")
        await repository.restore(skill)
        await audit_service.record(
            session, actor, "candidate_skill.restored", "candidate_skill", skill.id
        )
        return skill

    # ------------------------------------------------------------ requisitions
    async def _live_requisition(
        self, session: AsyncSession, requisition_id: UUID, loc: list[str | int]
    ) -> Requisition:
        requisition = await RequisitionRepository(session).get(requisition_id)
        if requisition is None:
            raise _field_error(loc, "No such requisition in this tenant")
        return requisition

    async def create_requisition(
        self, session: AsyncSession, actor: Actor, body: RequisitionCreate
    ) -> Requisition:
        matcher = await self.matcher(session)
        values = body.model_dump()
        values["required_skills"] = matcher.normalise(body.required_skills)
        values["preferred_skills"] = [
            s
            for s in matcher.normalise(body.preferred_skills)
            if s not in values["required_skills"]
        ]
        requisition = await RequisitionRepository(session).create(**values, created_by=actor.id)
        await audit_service.record(
            session,
            actor,
            "requisition.created",
            "requisition",
            requisition.id,
            {"title": requisition.title},
        )
        return requisition

    async def get_requisition(
        self, session: AsyncSession, requisition_id: UUID, *, include_deleted: bool = False
    ) -> Requisition:
        return await RequisitionRepository(session).get_or_raise(
            requisition_id, include_deleted=include_deleted
        )

    async def list_requisitions(
        self, session: AsyncSession, query: ListQuery, *, include_deleted: bool, q: str | None
    ) -> PageResult[Requisition]:
        repository = RequisitionRepository(session)
        stmt = repository.select(include_deleted=include_deleted)
        if q:
            stmt = stmt.where(Requisition.title.ilike(f"%{like_escape(q)}%"))
        return await repository.paginate(stmt, query)

    async def update_requisition(
        self,
        session: AsyncSession,
        actor: Actor,
        requisition_id: UUID,
        body: RequisitionUpdate,
        *,
        if_match: str | None,
    ) -> Requisition:
        repository = RequisitionRepository(session)
        requisition = await repository.get_or_raise(requisition_id)
        check_if_match(if_match, requisition.version)
        values = body.model_dump(exclude_unset=True)
        for name in ("title", "required_skills", "preferred_skills"):
            if name in values and values[name] is None:
                raise _field_error(["body", name], f"{name} cannot be null")
        matcher = await self.matcher(session)
        for name in ("required_skills", "preferred_skills"):
            if name in values:
                values[name] = matcher.normalise(values[name])
        changes = await repository.update(requisition, values)
        if changes:
            await audit_service.record(
                session, actor, "requisition.updated", "requisition", requisition.id, changes
            )
        return requisition

    async def delete_requisition(
        self, session: AsyncSession, actor: Actor, requisition_id: UUID
    ) -> None:
        await REQUISITION_DELETION.delete(session, actor, requisition_id)

    async def restore_requisition(
        self, session: AsyncSession, actor: Actor, requisition_id: UUID
    ) -> Requisition:
        requisition, _ = await REQUISITION_DELETION.restore(session, actor, requisition_id)
        return requisition

    async def matches(
        self,
        session: AsyncSession,
        requisition_id: UUID,
        query: ListQuery,
        *,
        min_score: float,
    ) -> PageResult[MatchOut]:
        """The tenant's candidates ranked against the requisition (`matching.py`)."""
        requisition = await RequisitionRepository(session).get_or_raise(requisition_id)
        params = match_params(
            _tenant(),
            requisition.required_skills,
            requisition.preferred_skills,
            requisition.min_experience_years,
            requisition.description,
            min_score,
        )
        page = await CandidateRepository(session).matches(params, query)
        items = [_match(row) for row in page.items]
        return PageResult(items=items, query=query, total=page.total, next_cursor=page.next_cursor)


def _match(row: Any) -> MatchOut:
    required = row["min_months"]
    return MatchOut(
        candidate=MatchCandidate(
            id=row["id"],
            name=row["name"],
            headline=row["headline"],
            skills=row["skills"],
            location=row["location"],
            total_experience_months=row["total_experience_months"],
        ),
        score=float(row["score"]),
        breakdown=Breakdown(
            required_skills=RequiredSkills(
                matched=row["required_matched"], missing=row["required_missing"]
            ),
            preferred_skills=PreferredSkills(matched=row["preferred_matched"]),
            experience=ExperienceFit(
                years=round(row["total_experience_months"] / 12, 2),
                required=None if required is None else round(required / 12, 2),
                fit=round(float(row["experience_fit"]), 4),
            ),
            text_relevance=round(float(row["text_relevance"]), 4),
        ),
    )


def _experience_months(entries: list[dict[str, Any]]) -> int:
    today = datetime.now(UTC)
    now = (today.year, today.month)
    intervals = []
    for entry in entries:
        if not entry.get("start"):
            continue
        start = (int(entry["start"][:4]), int(entry["start"][5:7]))
        end = (
            now
            if entry.get("current") or not entry.get("end")
            else (
                int(entry["end"][:4]),
                int(entry["end"][5:7]),
            )
        )
        intervals.append((start, min(end, now)))
    return total_months(intervals)


candidate_service = CandidateService()
