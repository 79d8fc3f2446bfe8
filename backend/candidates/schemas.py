"""Pydantic shapes of candidates, requisitions, matches, tenant skills and imports."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from backend.candidates.models import CandidateStatus

LinkKind = Literal["linkedin", "github", "website", "other"]
YearMonth = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
SkillName = Annotated[str, Field(min_length=1, max_length=200)]
Tag = Annotated[str, Field(min_length=1, max_length=100)]

# Profile fields a person may edit; an edit is kept through later CVs.
PROFILE_FIELDS = (
    "name",
    "emails",
    "phones",
    "location",
    "links",
    "headline",
    "summary",
    "skills",
    "experience",
    "education",
    "languages",
)


class Link(BaseModel):
    kind: LinkKind
    url: str = Field(min_length=1, max_length=2000)


class ExperienceEntry(BaseModel):
    title: str | None = Field(default=None, max_length=300)
    organization: str | None = Field(default=None, max_length=300)
    start: YearMonth | None = None
    end: YearMonth | None = None
    current: bool = False
    description: str | None = Field(default=None, max_length=20_000)


class EducationEntry(BaseModel):
    degree: str | None = Field(default=None, max_length=300)
    institution: str | None = Field(default=None, max_length=300)
    start: YearMonth | None = None
    end: YearMonth | None = None


class CandidateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str | None
    emails: list[str]
    phones: list[str]
    location: str | None
    links: list[Link]
    headline: str | None
    summary: str | None
    skills: list[str]
    experience: list[ExperienceEntry]
    education: list[EducationEntry]
    languages: list[str]
    total_experience_months: int
    status: CandidateStatus
    tags: list[str]
    document_ids: list[UUID]
    requisition_ids: list[UUID]
    edited_fields: list[str]
    parsed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class CandidateUpdate(BaseModel):
    """Profile fields (each one set is recorded in `edited_fields` and kept
    through later CVs), `status` and `tags`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "interview", "tags": ["backend", "shortlist"]},
                {"location": "Berlin, Germany", "skills": ["Python", "PostgreSQL", "Kubernetes"]},
            ]
        },
    )

    name: str | None = Field(default=None, max_length=300)
    emails: list[EmailStr] | None = Field(default=None, max_length=50)
    phones: list[str] | None = Field(default=None, max_length=50)
    location: str | None = Field(default=None, max_length=300)
    links: list[Link] | None = Field(default=None, max_length=50)
    headline: str | None = Field(default=None, max_length=500)
    summary: str | None = Field(default=None, max_length=20_000)
    skills: list[SkillName] | None = Field(default=None, max_length=500)
    experience: list[ExperienceEntry] | None = Field(default=None, max_length=100)
    education: list[EducationEntry] | None = Field(default=None, max_length=100)
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] | None = Field(
        default=None, max_length=50
    )
    status: CandidateStatus | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)


class CandidateMerge(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "target_id": "2b1a0c9d-8e7f-4a6b-9c5d-4e3f2a1b0c9d",
                    "source_id": "7c6b5a49-3827-4165-a0b9-c8d7e6f5a4b3",
                }
            ]
        },
    )

    target_id: UUID
    source_id: UUID


class ImportItem(BaseModel):
    filename: str
    document_id: UUID | None = None
    job_id: UUID | None = None
    error: str | None = None


class ImportAnswer(BaseModel):
    batch_id: UUID | None
    items: list[ImportItem]


class TenantSkillCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Kubernetes", "aliases": ["k8s", "kube"]}]},
    )

    name: SkillName
    aliases: list[SkillName] = Field(default_factory=list, max_length=50)

    @field_validator("name", "aliases", mode="after")
    @classmethod
    def _tidy(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return re.sub(r"\s+", " ", value.strip())
        return [re.sub(r"\s+", " ", alias.strip()) for alias in value if alias.strip()]


class TenantSkillOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    aliases: list[str]
    created_at: datetime


class RequisitionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Senior backend engineer",
                    "description": "Builds and runs our Python services.",
                    "required_skills": ["Python", "PostgreSQL"],
                    "preferred_skills": ["Kubernetes", "Redis"],
                    "min_experience_years": 5,
                    "location": "Berlin",
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=50_000)
    required_skills: list[SkillName] = Field(default_factory=list, max_length=100)
    preferred_skills: list[SkillName] = Field(default_factory=list, max_length=100)
    min_experience_years: float | None = Field(default=None, ge=0, le=60)
    location: str | None = Field(default=None, max_length=300)


class RequisitionUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"min_experience_years": 3, "preferred_skills": ["Kubernetes", "Redis", "FastAPI"]}
            ]
        },
    )

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=50_000)
    required_skills: list[SkillName] | None = Field(default=None, max_length=100)
    preferred_skills: list[SkillName] | None = Field(default=None, max_length=100)
    min_experience_years: float | None = Field(default=None, ge=0, le=60)
    location: str | None = Field(default=None, max_length=300)


class RequisitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    description: str | None
    required_skills: list[str]
    preferred_skills: list[str]
    min_experience_years: float | None
    location: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class MatchCandidate(BaseModel):
    id: UUID
    name: str | None
    headline: str | None
    skills: list[str]
    location: str | None
    total_experience_months: int


class RequiredSkills(BaseModel):
    matched: list[str]
    missing: list[str]


class PreferredSkills(BaseModel):
    matched: list[str]


class ExperienceFit(BaseModel):
    years: float
    required: float | None
    fit: float


class Breakdown(BaseModel):
    required_skills: RequiredSkills
    preferred_skills: PreferredSkills
    experience: ExperienceFit
    text_relevance: float


class MatchOut(BaseModel):
    candidate: MatchCandidate
    score: float
    breakdown: Breakdown
