"""Imports every table so that `Base.metadata` knows them all (Alembic, FKs)."""

from backend.api_keys.models import ApiKey
from backend.audit.models import AuditEvent
from backend.auth.models import OneTimeToken, RefreshToken
from backend.kit.models import Base
from backend.roles.models import Role, UserRole
from backend.tenants.models import Tenant
from backend.users.models import User

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "OneTimeToken",
    "RefreshToken",
    "Role",
    "Tenant",
    "User",
    "UserRole",
]
