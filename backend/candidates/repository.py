"""SQL of the candidates workload: candidates, requisitions, tenant skills,
and the ranking statement of `matching.py`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, or_, select, text

from backend.candidates.matching import matches_statement
from backend.candidates.models import Candidate, Requisition, TenantSkill
from backend.kit.pagination import ListQuery, PageResult, encode_cursor
from backend.kit.repository import Repository


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CandidateRepository(Repository[Candidate]):
    model = Candidate
    resource_name = "Candidate"

    def filtered(self, *, include_deleted: bool, filters: dict[str, Any]) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if filters.get("q"):
            stmt = stmt.where(
                Candidate.search_vector.op("@@")(func.websearch_to_tsquery("english", filters["q"]))
            )
        if filters.get("skill"):
            stmt = stmt.where(Candidate.skills.contains(list(filters["skill"])))
        if filters.get("any_skill"):
            stmt = stmt.where(Candidate.skills.overlap(list(filters["any_skill"])))
        if filters.get("min_experience_years") is not None:
            months = filters["min_experience_years"] * 12
            stmt = stmt.where(Candidate.total_experience_months >= months)
        if filters.get("location"):
            stmt = stmt.where(Candidate.location.ilike(f"%{like_escape(filters['location'])}%"))
        if filters.get("status"):
            stmt = stmt.where(Candidate.status == filters["status"])
        if filters.get("tag"):
            stmt = stmt.where(Candidate.tags.contains([filters["tag"]]))
        if filters.get("requisition_id"):
            stmt = stmt.where(Candidate.requisition_ids.contains([filters["requisition_id"]]))
        return stmt

    async def with_contacts(
        self, emails: list[str], phones: list[str], *, exclude: UUID | None = None
    ) -> list[Candidate]:
        """Live candidates sharing any e-mail (stored lower-case) or phone, oldest first."""
        if not emails and not phones:
            return []
        clauses = []
        if emails:
            clauses.append(Candidate.emails.overlap(emails))
        if phones:
            clauses.append(Candidate.phones.overlap(phones))
        stmt = self.select().where(or_(*clauses)).order_by(Candidate.created_at, Candidate.id)
        if exclude is not None:
            stmt = stmt.where(Candidate.id != exclude)
        return list((await self.session.execute(stmt.with_for_update())).scalars())

    async def with_document(self, document_id: UUID) -> Candidate | None:
        stmt = self.select().where(Candidate.document_ids.contains([document_id]))
        row: Candidate | None = (await self.session.execute(stmt.limit(1))).scalar_one_or_none()
        return row

    async def lock_tenant_candidates(self, tenant_id: UUID) -> None:
        """Serialise the create-or-update of candidates within a tenant, so two
        CVs of one person parsed at once make one candidate."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('candidates:' || CAST(:t AS text)))"),
            {"t": str(tenant_id)},
        )

    async def cv_text(self, candidate_id: UUID) -> str | None:
        return await self.session.scalar(
            select(Candidate.cv_text).where(Candidate.id == candidate_id)
        )

    async def matches(self, params: dict[str, Any], query: ListQuery) -> PageResult[Any]:
        values = {**params, "page_limit": query.page_size + (1 if query.keyset else 0)}
        if query.keyset:
            if query.after is not None:
                score, values["after_id"] = query.after
                # the cursor's float as the decimal it was printed from, not its binary value
                values["after_score"] = Decimal(str(score))
            stmt = matches_statement(
                keyset=True,
                after=query.after is not None,
                required=len(params["required"]),
                preferred=len(params["preferred"]),
            )
            rows = list((await self.session.execute(stmt, values)).mappings())
            next_cursor = None
            if len(rows) > query.page_size:
                rows = rows[: query.page_size]
                last = rows[-1]
                next_cursor = encode_cursor(query.sort, float(last["score"]), last["id"])
            return PageResult(items=rows, query=query, next_cursor=next_cursor)
        values["page_offset"] = (query.page - 1) * query.page_size
        rows = list(
            (
                await self.session.execute(
                    matches_statement(
                        keyset=False,
                        after=False,
                        required=len(params["required"]),
                        preferred=len(params["preferred"]),
                    ),
                    values,
                )
            ).mappings()
        )
        total = int(rows[0]["total"]) if rows else 0
        if not rows and query.page > 1:
            count_query = ListQuery(sort=query.sort, page=1, page_size=1)
            first = await self.matches(params, count_query)
            total = first.total or 0
        return PageResult(items=rows, query=query, total=total)


class RequisitionRepository(Repository[Requisition]):
    model = Requisition
    resource_name = "Requisition"


class TenantSkillRepository(Repository[TenantSkill]):
    model = TenantSkill
    resource_name = "Skill"

    async def by_name(self, name: str, *, include_deleted: bool = False) -> TenantSkill | None:
        stmt = self.select(include_deleted=include_deleted).where(
            func.lower(TenantSkill.name) == name.lower()
        )
        if include_deleted:
            stmt = stmt.order_by(TenantSkill.deleted_at.desc().nulls_first())
        row: TenantSkill | None = (await self.session.execute(stmt.limit(1))).scalar_one_or_none()
        return row

    async def live(self) -> list[TenantSkill]:
        stmt = self.select().order_by(TenantSkill.created_at, TenantSkill.id)
        return list((await self.session.execute(stmt)).scalars())
