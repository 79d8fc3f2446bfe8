"""SQL of audit events (insert and read only: the app role may do nothing else)."""

from __future__ import annotations

from backend.audit.models import AuditEvent
from backend.kit.repository import Repository


class AuditRepository(Repository[AuditEvent]):
    model = AuditEvent
    resource_name = "Audit event"
