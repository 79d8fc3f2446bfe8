"""Segmentations and segments as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.documents.meshes import MeshFormat
from backend.scans.models import SegmentationStatus
from backend.scans.segmentation import Method

FDI_QUADRANTS = range(1, 5)
FDI_TEETH = range(1, 9)


class SegmentationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"document_id": "0192c0de-0000-7000-8000-000000000001", "method": "components"}
            ]
        },
    )

    document_id: UUID = Field(description="A mesh document attached to the case")
    method: Method = Method.components
    min_faces: int = Field(
        default=100, ge=1, le=10_000_000, description="Smaller parts are discarded"
    )
    crease_angle: float = Field(
        default=30.0,
        gt=0,
        le=180,
        description="Degrees; concave edges this sharp or sharper separate regions "
        "(`curvature` only)",
    )
    formats: list[MeshFormat] = Field(
        default_factory=lambda: [MeshFormat.stl],
        min_length=1,
        max_length=4,
        description="Files written for every segment; the others are converted on request",
    )

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[MeshFormat]) -> list[MeshFormat]:
        return sorted(set(value), key=list(MeshFormat).index)

    def params(self) -> dict[str, Any]:
        """The parameters that decide the result (what the duplicate guard compares)."""
        params: dict[str, Any] = {"min_faces": self.min_faces}
        if self.method is Method.curvature:
            params["crease_angle"] = self.crease_angle
        params["formats"] = [str(item) for item in self.formats]
        return params


class SegmentationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    case_id: UUID
    document_id: UUID
    method: Method
    params: dict[str, Any]
    status: SegmentationStatus
    job_id: UUID | None
    segment_count: int
    discarded_faces: int | None
    total_faces: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Bounds(BaseModel):
    min: list[float]
    max: list[float]


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    segmentation_id: UUID
    case_id: UUID
    document_id: UUID
    number: int = Field(description="1 = the segment with the most faces")
    label: str | None
    tooth_number: int | None = Field(description="FDI two-digit notation, 11-48")
    edited_fields: list[str] = Field(description="Fields a person set (kept over re-runs)")
    faces: int
    vertices: int
    surface_area: float
    volume: float | None = Field(description="Only for watertight segments")
    watertight: bool
    bounds: Bounds
    centroid: list[float]
    formats: list[str] = Field(default_factory=list, description="Formats already stored")
    version: int
    created_at: datetime
    updated_at: datetime


def check_fdi(value: int | None) -> int | None:
    if value is None:
        return None
    quadrant, tooth = divmod(value, 10)
    if quadrant not in FDI_QUADRANTS or tooth not in FDI_TEETH:
        raise ValueError("an FDI tooth number: quadrant 1-4 then tooth 1-8 (11-18, 21-28, ...)")
    return value


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"label": "upper left first molar", "tooth_number": 26}]},
    )

    label: str | None = Field(default=None, max_length=200)
    tooth_number: int | None = Field(default=None, description="FDI 11-48, or null")

    @field_validator("tooth_number")
    @classmethod
    def _fdi(cls, value: int | None) -> int | None:
        return check_fdi(value)

    @model_validator(mode="after")
    def _something(self) -> SegmentUpdate:
        if not self.model_fields_set:
            raise ValueError("give `label` and/or `tooth_number`")
        return self


class SegmentationCount(BaseModel):
    id: UUID
    method: Method
    segment_count: int


class SegmentSummary(BaseModel):
    count: int
    faces: int
    surface_area: float
    volume: float = Field(description="Sum over watertight segments")
    by_segmentation: list[SegmentationCount]


DownloadFormat = Literal["stl", "ply", "obj", "glb"]
