"""The fixed permission catalogue and the system roles every tenant starts with."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    TENANT_READ = "tenant:read"
    TENANT_MANAGE = "tenant:manage"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    ROLES_READ = "roles:read"
    ROLES_MANAGE = "roles:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    DOCUMENTS_READ = "documents:read"
    DOCUMENTS_WRITE = "documents:write"
    DOCUMENTS_DELETE = "documents:delete"
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    CASES_DELETE = "cases:delete"
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    AUDIT_READ = "audit:read"


ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)

_READS = frozenset(
    {
        Permission.TENANT_READ,
        Permission.USERS_READ,
        Permission.ROLES_READ,
        Permission.DOCUMENTS_READ,
        Permission.CASES_READ,
        Permission.JOBS_READ,
    }
)

SYSTEM_ROLES: dict[str, tuple[str, frozenset[Permission]]] = {
    "owner": ("Everything, including the tenant itself", ALL_PERMISSIONS),
    "admin": ("Everything but managing the tenant", ALL_PERMISSIONS - {Permission.TENANT_MANAGE}),
    "member": (
        "Reads everything; writes documents, cases and jobs",
        _READS | {Permission.DOCUMENTS_WRITE, Permission.CASES_WRITE, Permission.JOBS_WRITE},
    ),
    "viewer": ("Read-only", _READS),
}

OWNER_ROLE = "owner"
