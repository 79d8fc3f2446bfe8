"""Business rules of tenants: provisioning a tenant with its roles and owner."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import current_system_scope
from backend.kit.errors import Conflict
from backend.roles.permissions import OWNER_ROLE
from backend.roles.service import role_service
from backend.settings import Settings
from backend.tenants.models import Tenant
from backend.tenants.repository import TenantRepository
from backend.users.models import User
from backend.users.service import user_service

_SLUG_INVALID = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    slug = _SLUG_INVALID.sub("-", name.lower()).strip("-")[:50]
    return slug or "tenant"


@dataclass(frozen=True, slots=True)
class ProvisionedTenant:
    tenant: Tenant
    owner: User


class TenantService:
    async def provision(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        name: str,
        owner_email: str,
        owner_password: str,
        slug: str | None = None,
        plan: str = "free",
        owner_full_name: str | None = None,
        owner_is_superadmin: bool = False,
    ) -> ProvisionedTenant:
        """A tenant, its system roles and its first owner, in the caller's
        transaction. Runs in a system scope: the tenant does not exist yet."""
        if current_system_scope() is None:
            raise RuntimeError("tenant provisioning needs a system scope")
        repository = TenantRepository(session)
        if slug is None:
            slug = slugify(name)
            while await repository.slug_taken(slug):
                slug = f"{slugify(name)}-{secrets.token_hex(3)}"
        elif await repository.slug_taken(slug):
            raise Conflict("A tenant with this slug already exists")
        tenant = await repository.create(name=name, slug=slug, plan=plan)
        roles = await role_service.create_system_roles(session, tenant.id)
        owner = await user_service.create_user(
            session,
            settings,
            tenant_id=tenant.id,
            email=owner_email,
            password=owner_password,
            full_name=owner_full_name,
            roles=[roles[OWNER_ROLE]],
            is_superadmin=owner_is_superadmin,
        )
        return ProvisionedTenant(tenant=tenant, owner=owner)


tenant_service = TenantService()
