"""Business rules of tenants: provisioning a tenant with its roles and owner,
its settings, its plan limits and its usage.

Usage numbers belong to other domains (documents count storage, jobs count
running jobs). They plug in with `register_usage_provider` so that tenants
imports none of them; a number nobody provides is 0, and a number several
domains provide (storage) is their sum. A provider is a scalar subquery,
read in the same statement as the tenant itself, so `GET /tenant` is one
query however many domains count.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, bindparam
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.audit.service import Actor, audit_service
from backend.kit.db import current_system_scope
from backend.kit.errors import Conflict, NotFound, ValidationFailed
from backend.kit.pagination import ListQuery, PageResult
from backend.roles.permissions import OWNER_ROLE
from backend.roles.service import role_service
from backend.settings import Settings, get_settings
from backend.tenants.models import Tenant, TenantStatus
from backend.tenants.plans import LIMIT_NAMES, TenantLimits, resolve_limits
from backend.tenants.repository import TenantRepository
from backend.users.models import User
from backend.users.service import new_password_hash, user_service

_SLUG_INVALID = re.compile(r"[^a-z0-9]+")

# A usage number as SQL: `provider(tenant_id)` is a scalar subquery (an int)
# over the tenant whose id is the expression `tenant_id`. Every provider is
# read in the tenant's own statement, in the tenant's scope: `GET /tenant`
# and each quota check cost one statement, however many domains count.
UsageProvider = Callable[[Any], Any]

# The usage numbers `GET /tenant` shows; other domains provide them.
USAGE_NAMES = ("storage_bytes", "running_jobs")
_usage_providers: dict[str, list[UsageProvider]] = {}


@functools.lru_cache(maxsize=8)
def _tenant_with_usage(providers: tuple[tuple[str, UsageProvider], ...]) -> Select[Any]:
    """The statement of `get_with_usage` for these providers: the tenant's
    columns, then `usage_<n>` per provider."""
    return TenantRepository.live_columns(bindparam("tenant_id")).add_columns(
        *(
            provider(Tenant.id).label(f"usage_{index}")
            for index, (_, provider) in enumerate(providers)
        )
    )


def register_usage_provider(name: str, provider: UsageProvider) -> None:
    """`provider` supplies (a part of) usage `name` (one of `USAGE_NAMES`),
    e.g. the documents domain registers `storage_bytes` as the sum of its
    documents' sizes. Several providers of one name add up; registering the
    same one again is a no-op."""
    if name not in USAGE_NAMES:
        raise ValueError(f"unknown usage {name!r}; known: {', '.join(USAGE_NAMES)}")
    providers = _usage_providers.setdefault(name, [])
    if provider not in providers:
        providers.append(provider)


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
        *,
        name: str,
        owner_email: str,
        owner_password_hash: str,
        slug: str | None = None,
        plan: str = "free",
        owner_full_name: str | None = None,
        owner_is_superadmin: bool = False,
    ) -> ProvisionedTenant:
        """A tenant, its system roles and its first owner, in the caller's
        transaction. Runs in a system scope: the tenant does not exist yet.
        The owner's password comes hashed (`new_password_hash`), so that no
        connection is held while it is."""
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
            tenant_id=tenant.id,
            email=owner_email,
            password_hash=owner_password_hash,
            full_name=owner_full_name,
            roles=[roles[OWNER_ROLE]],
            is_superadmin=owner_is_superadmin,
        )
        return ProvisionedTenant(tenant=tenant, owner=owner)

    async def get_tenant(
        self, session: AsyncSession, tenant_id: UUID, *, include_deleted: bool = False
    ) -> Tenant:
        return await TenantRepository(session).get_or_raise(
            tenant_id, include_deleted=include_deleted
        )

    async def limits_for(
        self, session: AsyncSession, tenant_id: UUID, settings: Settings | None = None
    ) -> TenantLimits:
        """The tenant's effective limits: its plan's (setting `PLANS`) with its
        overrides on top. Pass the app's settings where you have them."""
        tenant = await self.get_tenant(session, tenant_id, include_deleted=True)
        return resolve_limits(settings or get_settings(), tenant.plan, tenant.limits)

    async def usage_of(self, session: AsyncSession, tenant_id: UUID, name: str) -> int:
        """One usage number (all its providers added up): `storage_bytes`
        counts documents, open uploads' declared sizes and job artifacts."""
        connection = await session.connection()
        return (await self.get_with_usage(connection, tenant_id))[1][name]

    async def get_with_usage(
        self, connection: AsyncConnection, tenant_id: UUID
    ) -> tuple[RowMapping, dict[str, int]]:
        """The live tenant's columns and its usage numbers, in one statement
        (built once for the providers registered)."""
        providers = tuple(
            (name, provider) for name, found in _usage_providers.items() for provider in found
        )
        stmt = _tenant_with_usage(providers)
        row = (await connection.execute(stmt, {"tenant_id": tenant_id})).mappings().one_or_none()
        if row is None:
            raise NotFound("Tenant not found")
        usage = dict.fromkeys(USAGE_NAMES, 0)
        for index, (name, _) in enumerate(providers):
            usage[name] += int(row[f"usage_{index}"] or 0)
        return row, usage

    async def update_tenant(
        self,
        session: AsyncSession,
        actor: Actor,
        tenant_id: UUID,
        *,
        name: str | None = None,
        settings_patch: dict[str, Any] | None = None,
    ) -> Tenant:
        """A tenant's own changes: its name and its settings (merged; a null
        value removes a key)."""
        repository = TenantRepository(session)
        tenant = await repository.get_or_raise(tenant_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if settings_patch is not None:
            merged = {**tenant.settings, **settings_patch}
            values["settings"] = {key: value for key, value in merged.items() if value is not None}
        changes = await repository.update(tenant, values)
        if changes:
            await audit_service.record(
                session, actor, "tenant.updated", "tenant", tenant.id, changes, tenant_id=tenant.id
            )
        return tenant

    # --- Platform administration (callers run in a system scope) -------------

    async def list_tenants(
        self,
        session: AsyncSession,
        query: ListQuery,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        q: str | None = None,
        include_deleted: bool = False,
    ) -> PageResult[Tenant]:
        repository = TenantRepository(session)
        stmt = repository.select(include_deleted=include_deleted)
        if status is not None:
            stmt = stmt.where(Tenant.status == status)
        if plan is not None:
            stmt = stmt.where(Tenant.plan == plan)
        if q:
            pattern = f"%{q.strip()}%"
            stmt = stmt.where(Tenant.name.ilike(pattern) | Tenant.slug.ilike(pattern))
        return await repository.paginate(stmt, query)

    async def create_tenant(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        *,
        name: str,
        owner_email: str,
        owner_password: str,
        slug: str | None = None,
        plan: str = "free",
        owner_full_name: str | None = None,
    ) -> ProvisionedTenant:
        _check_plan(settings, plan)
        # Before the first query: no connection is held while hashing.
        owner_password_hash = await new_password_hash(
            settings, owner_password, owner_email, field="owner_password"
        )
        provisioned = await self.provision(
            session,
            name=name,
            owner_email=owner_email,
            owner_password_hash=owner_password_hash,
            slug=slug,
            plan=plan,
            owner_full_name=owner_full_name,
        )
        tenant = provisioned.tenant
        changes = {
            "name": name,
            "slug": tenant.slug,
            "plan": plan,
            "owner_id": str(provisioned.owner.id),
        }
        await audit_service.record(
            session, actor, "tenant.created", "tenant", tenant.id, changes, tenant_id=tenant.id
        )
        return provisioned

    async def admin_update_tenant(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        tenant_id: UUID,
        *,
        name: str | None = None,
        plan: str | None = None,
        status: TenantStatus | None = None,
        limit_overrides: dict[str, Any] | None = None,
    ) -> Tenant:
        """Name, plan, status (suspend / reactivate) and limit overrides; in
        `limit_overrides` a None value removes that override."""
        repository = TenantRepository(session)
        tenant = await repository.get_or_raise(tenant_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if plan is not None:
            _check_plan(settings, plan)
            values["plan"] = plan
        if status is not None:
            values["status"] = status
        if limit_overrides is not None:
            merged = {**tenant.limits, **limit_overrides}
            values["limits"] = {
                key: value
                for key, value in merged.items()
                if value is not None and key in LIMIT_NAMES
            }
        changes = await repository.update(tenant, values)
        if changes:
            action = "tenant.updated"
            if set(changes) == {"status"}:
                suspended = tenant.status == TenantStatus.SUSPENDED
                action = "tenant.suspended" if suspended else "tenant.reactivated"
            await audit_service.record(
                session, actor, action, "tenant", tenant.id, changes, tenant_id=tenant.id
            )
        return tenant

    async def delete_tenant(self, session: AsyncSession, actor: Actor, tenant_id: UUID) -> None:
        repository = TenantRepository(session)
        tenant = await repository.get_or_raise(tenant_id)
        await repository.soft_delete(tenant, by=actor.id)
        await audit_service.record(
            session, actor, "tenant.deleted", "tenant", tenant.id, {}, tenant_id=tenant.id
        )

    async def restore_tenant(self, session: AsyncSession, actor: Actor, tenant_id: UUID) -> Tenant:
        repository = TenantRepository(session)
        tenant = await repository.get_or_raise(tenant_id, include_deleted=True)
        if tenant.deleted_at is None:
            return tenant
        if await repository.slug_taken(tenant.slug):
            raise Conflict("Another live tenant has taken this tenant's slug")
        await repository.restore(tenant)
        await audit_service.record(
            session, actor, "tenant.restored", "tenant", tenant.id, {}, tenant_id=tenant.id
        )
        return tenant

    async def count_live(self, session: AsyncSession) -> int:
        return await TenantRepository(session).count_live()

    async def purge_deleted(self, session: AsyncSession, cutoff: datetime) -> list[UUID]:
        """Hard-delete tenants soft-deleted before `cutoff` (their rows go by
        cascade); the ids purged."""
        return await TenantRepository(session).purge_deleted_before(cutoff)

    async def deleted_before(self, session: AsyncSession, cutoff: datetime) -> list[UUID]:
        return await TenantRepository(session).deleted_before(cutoff)


def _check_plan(settings: Settings, plan: str) -> None:
    if plan not in settings.plans:
        known = ", ".join(sorted(settings.plans))
        raise ValidationFailed(
            f"Unknown plan {plan!r}",
            errors=[{"loc": ["body", "plan"], "msg": f"must be one of: {known}", "type": "enum"}],
        )


tenant_service = TenantService()
