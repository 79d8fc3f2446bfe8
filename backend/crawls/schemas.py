"""Crawls as the API shows and takes them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.crawls.exports import ExportFormat
from backend.crawls.models import CrawlStatus, PageStatus
from backend.jobs.schemas import JobOut

MAX_HEADERS = 10
MAX_GLOBS = 50
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# Headers the crawler owns or that would change how requests are framed.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "user-agent",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "accept-encoding",
    }
)

Glob = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"^[/*]")
]


class CrawlCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://docs.example.com/guide/",
                    "title": "Example guide",
                    "max_depth": 3,
                    "max_pages": 200,
                    "include": ["/guide/*"],
                    "exclude": ["/guide/archive/*"],
                    "formats": ["markdown", "zip"],
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2000, description="http(s) start URL")
    title: str | None = Field(default=None, max_length=500)
    max_depth: int = Field(default=2, ge=0, le=10)
    max_pages: int = Field(default=100, ge=1, description="At most the plan's `max_crawl_pages`")
    same_host: bool = True
    include: list[Glob] = Field(
        default_factory=list, max_length=MAX_GLOBS, description="URL path globs, e.g. `/docs/*`"
    )
    exclude: list[Glob] = Field(default_factory=list, max_length=MAX_GLOBS)
    respect_robots: bool = True
    delay_ms: int = Field(default=200, ge=0, le=10_000, description="Per host")
    concurrency: int = Field(default=4, ge=1, le=8)
    formats: list[ExportFormat] = Field(
        default_factory=lambda: [ExportFormat.MARKDOWN, ExportFormat.JSON], max_length=4
    )
    save_as_documents: bool = False
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Sent to the site; stored encrypted and never returned (names only)",
    )

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, value: list[ExportFormat]) -> list[ExportFormat]:
        return list(dict.fromkeys(value))

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, content in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in FORBIDDEN_HEADERS:
                raise ValueError(f"The crawler sets {name!r} itself")
            if len(content) > 4096 or any(c in content for c in "\r\n\0"):
                raise ValueError(f"The value of {name!r} is too long or has line breaks")
        return value


class CrawlExportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    format: ExportFormat
    name: str
    size: int
    content_type: str


class CrawlStats(BaseModel):
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    pages_queued: int = 0
    bytes: int = 0
    duration_ms: int = 0


class CrawlOut(BaseModel):
    id: UUID
    url: str
    title: str | None
    status: CrawlStatus
    job_id: UUID | None
    options: dict[str, Any]
    stats: CrawlStats
    exports: list[CrawlExportOut]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deleted_at: datetime | None


class CrawlAccepted(CrawlOut):
    """`POST /crawls`: the crawl and its `web.crawl` job."""

    job: JobOut | None = None


class CrawlPageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    url: str
    final_url: str | None
    status: PageStatus
    status_code: int | None
    depth: int
    title: str | None
    content_type: str | None
    words: int
    content_sha256: str | None
    fetched_at: datetime | None
    error: str | None
    document_id: UUID | None


class CrawlPageDetail(CrawlPageOut):
    markdown: str | None


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"format": "html"}]})

    format: ExportFormat


class Problem(BaseModel):
    field: str
    code: str
    message: str


class RobotsOut(BaseModel):
    allowed: bool | None = None
    crawl_delay_ms: int | None = None


class ValidateOut(BaseModel):
    valid: bool
    url: str | None
    problems: list[Problem]
    reachable: bool
    status_code: int | None = None
    content_type: str | None = None
    robots: RobotsOut = Field(default_factory=RobotsOut)


class EstimateOut(BaseModel):
    estimated_pages: int
    method: str
    sitemap_pages: int
    linked_pages: int
    estimated_seconds: float
