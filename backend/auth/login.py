"""Signup and login.

Password hashing is slow by design, so neither holds a database connection
while it runs: signup hashes the owner's password before its first query;
login reads the candidate in a short transaction of its own, verifies, and
the request's transaction only begins for the writes. A failed login is
audited in a transaction of its own, since the request's rolls back with
the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.models import ActorType
from backend.audit.service import audit_service
from backend.auth.repository import AuthRepository
from backend.auth.schemas import SignupIn
from backend.auth.sessions import TokenPair, session_service
from backend.kit.db import Database, scope, system_scope, tenant_scope
from backend.kit.errors import DossierError, NotFound, Unauthenticated
from backend.kit.security.passwords import verify_password
from backend.settings import Settings
from backend.tenants.models import TenantStatus
from backend.tenants.service import ProvisionedTenant, tenant_service
from backend.users.repository import UserRepository
from backend.users.service import new_password_hash, normalise_email

BAD_CREDENTIALS = "Incorrect email or password"


class TenantSuspended(DossierError):
    status, code = 403, "tenant_suspended"


@dataclass(frozen=True, slots=True)
class UserActor:
    """A user acting before they hold a principal (signup, login, reset)."""

    id: UUID
    actor_type: ActorType = ActorType.USER


@dataclass(frozen=True, slots=True)
class SignedUp:
    provisioned: ProvisionedTenant
    tokens: TokenPair
    roles: list[str]


class LoginService:
    async def signup(self, session: AsyncSession, settings: Settings, data: SignupIn) -> SignedUp:
        if not settings.signup_enabled:
            raise NotFound("Signup is disabled")
        owner_password_hash = await new_password_hash(settings, data.password, data.email)
        async with scope(session, None, system="auth.signup"):
            provisioned = await tenant_service.provision(
                session,
                name=data.tenant_name,
                slug=data.tenant_slug,
                owner_email=data.email,
                owner_password_hash=owner_password_hash,
                owner_full_name=data.full_name,
            )
        tenant, owner = provisioned.tenant, provisioned.owner
        async with scope(session, tenant.id):
            actor = UserActor(owner.id)
            await audit_service.record(
                session,
                actor,
                "tenant.created",
                "tenant",
                tenant.id,
                {"name": tenant.name, "slug": tenant.slug, "plan": tenant.plan},
            )
            await audit_service.record(
                session,
                actor,
                "user.created",
                "user",
                owner.id,
                {"email": owner.email, "full_name": owner.full_name, "roles": ["owner"]},
            )
            tokens = await session_service.open(
                session, settings, tenant_id=tenant.id, user_id=owner.id
            )
        return SignedUp(provisioned=provisioned, tokens=tokens, roles=["owner"])

    async def login(
        self,
        session: AsyncSession,
        database: Database,
        settings: Settings,
        email: str,
        password: str,
    ) -> TokenPair:
        email = normalise_email(email)
        # A short transaction of its own: no connection is held while hashing.
        with system_scope("auth.login"), tenant_scope(None):
            async with database.transaction() as lookup:
                candidate = await AuthRepository(lookup).login_candidate(email)
        # Unknown emails pay one verification too (against a dummy hash).
        hashed = candidate["password_hash"] if candidate else None
        verified = await verify_password(settings, password, hashed)
        if candidate is None or not verified:
            await self._login_failed(database, candidate, "bad_credentials")
            raise Unauthenticated(BAD_CREDENTIALS)
        if not candidate["is_active"] or candidate["tenant_deleted"]:
            await self._login_failed(database, candidate, "inactive")
            raise Unauthenticated(BAD_CREDENTIALS)
        if candidate["tenant_status"] != TenantStatus.ACTIVE:
            await self._login_failed(database, candidate, "tenant_suspended")
            raise TenantSuspended("The organisation's account is suspended")
        user_id, tenant_id = candidate["id"], candidate["tenant_id"]
        async with scope(session, tenant_id):
            users = UserRepository(session)
            user = await users.get(user_id)
            if user is None:  # deleted since the lookup
                raise Unauthenticated(BAD_CREDENTIALS)
            await users.update(user, {"last_login_at": datetime.now(UTC)})
            tokens = await session_service.open(
                session, settings, tenant_id=tenant_id, user_id=user_id
            )
            await audit_service.record(
                session,
                UserActor(user_id),
                "auth.login",
                "session",
                tokens.session_id,
            )
        return tokens

    async def _login_failed(
        self, database: Database, candidate: RowMapping | None, reason: str
    ) -> None:
        """Audited in a transaction of its own: the request's rolls back."""
        tenant_id = candidate["tenant_id"] if candidate else None
        user_id = candidate["id"] if candidate else None
        changes = {"reason": reason}
        if candidate is not None:
            changes["email"] = candidate["email"]
        with system_scope("auth.login_failed"), tenant_scope(tenant_id):
            async with database.transaction() as audit_session:
                await audit_service.record(
                    audit_session,
                    None,
                    "auth.login_failed",
                    "user",
                    user_id,
                    changes,
                    tenant_id=tenant_id,
                )


login_service = LoginService()
