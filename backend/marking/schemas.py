"""Marking guides, sheets and batches as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.marking.guide import MAX_QUESTIONS, Question, duplicate_ids
from backend.marking.models import SheetStatus

MAX_BATCH_DOCUMENTS = 100


def _unique_ids(questions: list[Question]) -> list[Question]:
    duplicates = duplicate_ids(questions)
    if duplicates:
        raise ValueError(f"question ids repeat: {', '.join(duplicates)}")
    return questions


class GuideValidation(BaseModel):
    warnings: list[str]


class GuideCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Biology mid-term",
                    "subject": "Biology",
                    "instructions": "Fill one bubble per question in pencil.",
                    "pass_percentage": 50,
                    "student_id_digits": 8,
                    "questions": [
                        {"id": "1", "type": "mcq", "max_marks": 1, "options": 4, "answer": "C"},
                        {
                            "id": "2",
                            "type": "multi",
                            "max_marks": 2,
                            "options": ["A", "B", "C", "D"],
                            "answer": ["A", "D"],
                            "partial": True,
                        },
                        {"id": "3", "type": "true_false", "max_marks": 1, "answer": False},
                        {
                            "id": "4",
                            "type": "numeric",
                            "max_marks": 2,
                            "answer": 9.81,
                            "tolerance": 0.05,
                        },
                        {
                            "id": "5",
                            "type": "exact",
                            "max_marks": 1,
                            "accepted": ["mitochondria", "mitochondrion"],
                        },
                    ],
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=500)
    subject: str | None = Field(default=None, max_length=200)
    instructions: str | None = Field(default=None, max_length=5000)
    pass_percentage: float = Field(default=50, ge=0, le=100)
    student_id_digits: int = Field(default=8, ge=1, le=12)
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)

    _unique = field_validator("questions")(_unique_ids)


class GuideUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"pass_percentage": 60, "instructions": "Use a dark pencil."}]
        },
    )

    title: str | None = Field(default=None, min_length=1, max_length=500)
    subject: str | None = Field(default=None, max_length=200)
    instructions: str | None = Field(default=None, max_length=5000)
    pass_percentage: float | None = Field(default=None, ge=0, le=100)
    student_id_digits: int | None = Field(default=None, ge=1, le=12)
    questions: list[Question] | None = Field(default=None, min_length=1, max_length=MAX_QUESTIONS)

    @field_validator("questions")
    @classmethod
    def _unique(cls, value: list[Question] | None) -> list[Question] | None:
        return _unique_ids(value) if value is not None else None


class GuideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    subject: str | None
    instructions: str | None
    pass_percentage: float
    student_id_digits: int
    questions: list[dict[str, Any]]
    total_marks: float
    question_count: int
    validation: GuideValidation
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @model_validator(mode="before")
    @classmethod
    def _validation(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            data = {
                name: getattr(data, name)
                for name in (
                    "id",
                    "title",
                    "subject",
                    "instructions",
                    "pass_percentage",
                    "student_id_digits",
                    "questions",
                    "total_marks",
                    "question_count",
                    "created_at",
                    "updated_at",
                    "deleted_at",
                    "warnings",
                )
            }
        if "validation" not in data:
            data = {**data, "validation": {"warnings": data.get("warnings") or []}}
        return data


class SheetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "guide_id": "1c9d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                    "document_id": "0b3c7c1e-5d0a-4f8e-9a57-2f1d6c3b9e41",
                    "student_id": "20260042",
                    "student_name": "Ada Lovelace",
                }
            ]
        },
    )

    guide_id: UUID
    document_id: UUID
    student_id: str | None = Field(default=None, min_length=1, max_length=64)
    student_name: str | None = Field(default=None, min_length=1, max_length=200)
    priority: int = Field(default=0, ge=-100, le=100)


class Score(BaseModel):
    awarded: float
    max: float
    percentage: float
    passed: bool


class QuestionMark(BaseModel):
    id: str
    type: str
    answer: Any
    awarded: float
    max_marks: float
    correct: bool | None
    feedback: str
    flags: list[str]
    confidence: float
    overridden: bool


class QaCounts(BaseModel):
    blank: int
    multiple_marks: int
    ambiguous: int
    low_confidence: int


class SheetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    guide_id: UUID
    document_id: UUID
    batch_id: UUID | None
    student_id: str | None
    student_name: str | None
    status: SheetStatus
    job_id: UUID | None
    source: str | None = Field(description="`omr` (bubbles read) or `text` (typed answers)")
    score: Score | None
    questions: list[QuestionMark]
    requires_review: bool
    qa: QaCounts | None
    error: str | None
    marked_at: datetime | None
    reviewed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class MarkOverride(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"awarded": 1.5, "feedback": "Second answer accepted after review"}]
        },
    )

    awarded: float = Field(ge=0)
    feedback: str | None = Field(default=None, max_length=2000)


class BatchCreate(BaseModel):
    """Either `document_ids` (one sheet each) or one `document_id` whose pages
    are cut into sheets of `pages_per_sheet` pages."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "guide_id": "1c9d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                    "document_ids": [
                        "0b3c7c1e-5d0a-4f8e-9a57-2f1d6c3b9e41",
                        "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    ],
                },
                {
                    "guide_id": "1c9d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                    "document_id": "5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170",
                    "pages_per_sheet": 2,
                },
            ]
        },
    )

    guide_id: UUID
    document_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH_DOCUMENTS
    )
    document_id: UUID | None = None
    pages_per_sheet: int = Field(default=1, ge=1, le=8)
    priority: int = Field(default=0, ge=-100, le=100)

    @model_validator(mode="after")
    def _one_source(self) -> BatchCreate:
        if (self.document_ids is None) == (self.document_id is None):
            raise ValueError("give either document_ids or document_id")
        if self.document_ids is not None and len(set(self.document_ids)) != len(self.document_ids):
            raise ValueError("document_ids repeat")
        return self


class BatchCreated(BaseModel):
    id: UUID
    guide_id: UUID
    total: int
    sheet_ids: list[UUID]


class HistogramBin(BaseModel):
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    count: int

    model_config = ConfigDict(populate_by_name=True)


class QuestionStatistics(BaseModel):
    id: str
    mean_awarded: float
    facility: float | None


class BatchStatistics(BaseModel):
    count: int
    mean: float | None
    median: float | None
    min: float | None
    max: float | None
    stdev: float | None
    pass_rate: float | None
    histogram: list[HistogramBin]
    questions: list[QuestionStatistics]


class BatchOut(BaseModel):
    id: UUID
    guide_id: UUID
    document_id: UUID | None
    pages_per_sheet: int | None
    total: int
    by_status: dict[str, int]
    done: bool
    completed_at: datetime | None
    statistics: BatchStatistics
    created_at: datetime


class BatchSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    guide_id: UUID
    document_id: UUID | None
    pages_per_sheet: int | None
    total: int
    done: bool = False
    completed_at: datetime | None
    created_at: datetime

    @model_validator(mode="after")
    def _done(self) -> BatchSummary:
        self.done = self.completed_at is not None
        return self


ReportFormat = Literal["json", "html", "pdf"]
