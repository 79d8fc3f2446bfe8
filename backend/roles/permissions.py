"""The permission catalogue and the system roles every tenant starts with.

The platform's permissions are the `Permission` enumeration; workloads add
theirs as `PermissionSpec`s listed in `backend/plugins.py`, which registers
them at start-up. The catalogue is fixed once the app runs: roles and API-key
scopes may name any permission in it and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator


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
_MEMBER = _READS | {Permission.DOCUMENTS_WRITE, Permission.CASES_WRITE, Permission.JOBS_WRITE}

OWNER_ROLE = "owner"
ROLE_DESCRIPTIONS = {
    "owner": "Everything, including the tenant itself",
    "admin": "Everything but managing the tenant",
    "member": "Reads everything; writes documents, cases and jobs",
    "viewer": "Read-only",
}


@dataclass(frozen=True, slots=True)
class PermissionSpec:
    """A permission a plugin adds; `owner` and `admin` always hold it, the
    other system roles when named in `roles`."""

    name: str
    description: str
    roles: frozenset[str] = frozenset()


class PermissionCatalogue:
    def __init__(self) -> None:
        self._extra: dict[str, PermissionSpec] = {}

    def register(self, spec: PermissionSpec) -> None:
        known = self._extra.get(spec.name)
        if spec.name in _PLATFORM or (known is not None and known != spec):
            raise ValueError(f"permission {spec.name!r} is already in the catalogue")
        self._extra[spec.name] = spec

    def names(self) -> list[str]:
        return [*(p.value for p in Permission), *self._extra]

    def __contains__(self, name: object) -> bool:
        return name in _PLATFORM or name in self._extra

    def system_role(self, role: str) -> frozenset[str]:
        """The permissions of system role `role` (owner, admin, member, viewer)."""
        everything = frozenset(self.names())
        if role == OWNER_ROLE:
            return everything
        if role == "admin":
            return everything - {Permission.TENANT_MANAGE.value}
        platform = _MEMBER if role == "member" else _READS
        extra = {name for name, spec in self._extra.items() if role in spec.roles}
        return frozenset({p.value for p in platform} | extra)

    def system_roles(self) -> dict[str, tuple[str, frozenset[str]]]:
        """Each system role's description and permissions."""
        return {role: (text, self.system_role(role)) for role, text in ROLE_DESCRIPTIONS.items()}


_PLATFORM = frozenset(p.value for p in Permission)
catalogue = PermissionCatalogue()


def _known(name: str) -> str:
    if name not in catalogue:
        raise ValueError(f"unknown permission {name!r}; see GET /api/v1/permissions")
    return name


PermissionName = Annotated[str, AfterValidator(_known)]
# Bounds the lists of permissions a request may carry.
MAX_PERMISSIONS = 100
