"""Imports every table so that `Base.metadata` knows them all (Alembic, FKs)."""

from backend.api_keys.models import ApiKey
from backend.audit.models import AuditEvent
from backend.auth.models import OneTimeToken, RefreshToken
from backend.candidates.models import Candidate, Requisition, TenantSkill
from backend.cases.models import Case, CaseCounter
from backend.crawls.models import Crawl, CrawlExport, CrawlPage
from backend.documents.models import Document
from backend.jobs.models import Batch, Job, JobArtifact, JobLog
from backend.kit.models import Base
from backend.marking.models import MarkingBatch, MarkingGuide, MarkingSheet
from backend.roles.models import Role, UserRole
from backend.scans.models import Segment, Segmentation, SegmentFile
from backend.tenants.models import Tenant
from backend.uploads.models import Upload, UploadPart
from backend.users.models import User
from backend.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Batch",
    "Candidate",
    "Case",
    "CaseCounter",
    "Crawl",
    "CrawlExport",
    "CrawlPage",
    "Document",
    "Job",
    "JobArtifact",
    "JobLog",
    "MarkingBatch",
    "MarkingGuide",
    "MarkingSheet",
    "OneTimeToken",
    "RefreshToken",
    "Requisition",
    "Role",
    "Segment",
    "SegmentFile",
    "Segmentation",
    "Tenant",
    "TenantSkill",
    "Upload",
    "UploadPart",
    "User",
    "UserRole",
    "Webhook",
    "WebhookDelivery",
]
