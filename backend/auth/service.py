"""Business rules of authentication: signup, login, refresh rotation with
reuse detection, logout, password change and reset, invitations.

Password hashing is slow by design, so login verifies the password without
holding a database connection: the candidate is read in a short transaction
of its own, and the request's transaction only begins for the writes.
Refusals that must leave a trace despite the request failing (a failed
login, a revoked family after refresh-token reuse) are written in their own
transaction, since the request's rolls back with the error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.models import ActorType
from backend.audit.service import audit_service
from backend.auth.models import OneTimePurpose, RefreshToken
from backend.auth.one_time import invalid_token, one_time_tokens, password_reset_mail
from backend.auth.principal import Principal
from backend.auth.repository import AuthRepository, PrincipalRepository, RefreshTokenRepository
from backend.auth.revocation import revoke_token
from backend.auth.schemas import MeOut, SignupIn, TenantBrief
from backend.auth.sessions import TokenPair, refresh_token_hash, session_service
from backend.kit.db import Database, after_commit, reapply_scope, system_scope, tenant_scope
from backend.kit.errors import DossierError, NotFound, PermissionDenied, Unauthenticated
from backend.kit.mail import Mailer
from backend.kit.security.passwords import hash_password, verify_password
from backend.roles.service import role_service
from backend.settings import Settings
from backend.tenants.models import TenantStatus
from backend.tenants.service import ProvisionedTenant, tenant_service
from backend.users.models import User
from backend.users.repository import UserRepository
from backend.users.schemas import UserOut
from backend.users.service import check_password, normalise_email, user_out

logger = logging.getLogger("dossier.auth")

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


@dataclass(frozen=True, slots=True)
class Accepted:
    user: UserOut
    tokens: TokenPair


def _session_principal(principal: Principal) -> UUID:
    """The session id of a user's bearer token; other principals have none."""
    if not principal.is_user or principal.session_id is None:
        raise PermissionDenied("Only a user's bearer token has a session")
    return principal.session_id


class AuthService:
    # --- Signup and login ---------------------------------------------------------

    async def signup(self, session: AsyncSession, settings: Settings, data: SignupIn) -> SignedUp:
        if not settings.signup_enabled:
            raise NotFound("Signup is disabled")
        with system_scope("auth.signup"), tenant_scope(None):
            await reapply_scope(session)
            provisioned = await tenant_service.provision(
                session,
                settings,
                name=data.tenant_name,
                slug=data.tenant_slug,
                owner_email=data.email,
                owner_password=data.password,
                owner_full_name=data.full_name,
            )
        tenant, owner = provisioned.tenant, provisioned.owner
        with tenant_scope(tenant.id):
            await reapply_scope(session)
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
        with tenant_scope(tenant_id):
            await reapply_scope(session)
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

    # --- Refresh rotation -----------------------------------------------------------

    async def refresh(
        self, session: AsyncSession, database: Database, settings: Settings, token: str
    ) -> TokenPair:
        """Rotate: the presented token is spent and its successor issued. A
        spent token presented again revokes its whole family, unless it is the
        immediate predecessor of the family's unused head and was spent within
        `REFRESH_REUSE_GRACE_SECONDS` (parallel tabs): that gets a new pair."""
        token_hash = refresh_token_hash(settings, token)
        with system_scope("auth.refresh"), tenant_scope(None):
            async with database.transaction() as lookup:
                repository = RefreshTokenRepository(lookup)
                row = await repository.by_hash(token_hash)
                spent_child = await repository.has_used_child(row) if row else False
        now = datetime.now(UTC)
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise Unauthenticated("Invalid or expired refresh token")
        if row.used_at is not None and not self._in_grace(settings, row, spent_child, now):
            await self._reuse_detected(database, row)
            raise Unauthenticated("Refresh token already used; the session has been revoked")
        with tenant_scope(row.tenant_id):
            await reapply_scope(session)
            await self._ensure_user_may_refresh(session, row)
            # Under the row lock: a concurrent refresh with the same token (or
            # a revocation) is seen here, not missed.
            used_at = await RefreshTokenRepository(session).spend(row, now)
            if used_at is None:
                raise Unauthenticated("Invalid or expired refresh token")
            if used_at != now and now - used_at > timedelta(
                seconds=settings.refresh_reuse_grace_seconds
            ):
                raise Unauthenticated("Refresh token already used")
            return await session_service.open(
                session,
                settings,
                tenant_id=row.tenant_id,
                user_id=row.user_id,
                family_id=row.family_id,
                parent_id=row.id,
            )

    @staticmethod
    def _in_grace(settings: Settings, row: RefreshToken, spent_child: bool, now: datetime) -> bool:
        assert row.used_at is not None
        window = timedelta(seconds=settings.refresh_reuse_grace_seconds)
        return not spent_child and now - row.used_at <= window

    async def _ensure_user_may_refresh(self, session: AsyncSession, row: RefreshToken) -> None:
        state = await PrincipalRepository(session).user_principal(row.tenant_id, row.user_id)
        if state is None or not state["is_active"] or state["tenant_status"] != TenantStatus.ACTIVE:
            raise Unauthenticated("Invalid or expired refresh token")
        valid_after = state["tokens_valid_after"]
        if valid_after is not None and row.created_at < valid_after:
            raise Unauthenticated("Invalid or expired refresh token")

    async def _reuse_detected(self, database: Database, row: RefreshToken) -> None:
        logger.warning(
            "refresh token reuse detected: session revoked",
            extra={
                "tenant_id": str(row.tenant_id),
                "user_id": str(row.user_id),
                "session_id": str(row.family_id),
            },
        )
        with tenant_scope(row.tenant_id):
            async with database.transaction() as revoke:
                revoked = await session_service.revoke_family(revoke, row.tenant_id, row.family_id)
                if revoked:
                    await audit_service.record(
                        revoke,
                        None,
                        "auth.session_revoked",
                        "session",
                        row.family_id,
                        {"reason": "refresh_token_reuse", "user_id": str(row.user_id)},
                    )

    # --- Sessions of the signed-in user ----------------------------------------------

    async def logout(
        self, session: AsyncSession, redis: Redis, settings: Settings, principal: Principal
    ) -> None:
        """This session ends: its access token is denylisted until it would have
        expired, and its refresh family is revoked."""
        session_id = _session_principal(principal)
        assert principal.token_id is not None
        assert principal.token_expires_at is not None
        await revoke_token(
            redis, settings.redis_key_prefix, principal.token_id, principal.token_expires_at
        )
        await session_service.revoke_family(session, principal.tenant_id, session_id)
        await audit_service.record(session, principal, "auth.logout", "session", session_id)

    async def logout_all(
        self, session: AsyncSession, redis: Redis, settings: Settings, principal: Principal
    ) -> None:
        """Every session of the user ends: tokens issued before now are void
        (`users.tokens_valid_after`) and every refresh family is revoked."""
        _session_principal(principal)
        users = UserRepository(session)
        user = await users.get_or_raise(principal.id)
        await users.update(user, {"tokens_valid_after": datetime.now(UTC)})
        revoked = await session_service.revoke_user(session, principal.tenant_id, principal.id)
        assert principal.token_id is not None
        assert principal.token_expires_at is not None
        await revoke_token(
            redis, settings.redis_key_prefix, principal.token_id, principal.token_expires_at
        )
        await audit_service.record(
            session, principal, "auth.logout_all", "user", principal.id, {"sessions": revoked}
        )

    async def change_password(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        current_password: str,
        new_password: str,
    ) -> TokenPair:
        """Every other session ends; this one continues with the fresh pair
        returned (its earlier tokens are void too)."""
        session_id = _session_principal(principal)
        users = UserRepository(session)
        user = await users.get_or_raise(principal.id)
        if not await verify_password(settings, current_password, user.password_hash):
            raise PermissionDenied("The current password is incorrect")
        check_password(new_password, user.email, field="new_password")
        new_hash = await hash_password(settings, new_password)
        await users.update(
            user, {"password_hash": new_hash, "tokens_valid_after": datetime.now(UTC)}
        )
        await session_service.revoke_user(session, principal.tenant_id, principal.id)
        await audit_service.record(session, principal, "auth.password_changed", "user", user.id)
        # This session goes on (same `sid`) with the pair returned: its earlier
        # access and refresh tokens are void like every other session's.
        return await session_service.open(
            session,
            settings,
            tenant_id=principal.tenant_id,
            user_id=principal.id,
            family_id=session_id,
        )

    def me(self, principal: Principal) -> MeOut:
        """From the profile read (or cached) with the principal: no query."""
        if not principal.is_user:
            raise PermissionDenied("Only users have a profile; API keys do not")
        row = principal.profile
        if row is None:
            raise Unauthenticated()
        return MeOut(
            id=row["id"],
            email=row["email"],
            full_name=row["full_name"],
            is_active=row["is_active"],
            roles=list(row["roles"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            tenant=TenantBrief(
                id=row["tenant_id"],
                name=row["tenant_name"],
                slug=row["tenant_slug"],
                plan=row["tenant_plan"],
                status=row["tenant_status"],
            ),
            permissions=sorted(principal.permissions),
            is_superadmin=row["is_superadmin"],
        )

    # --- Mailed tokens ---------------------------------------------------------------

    async def request_password_reset(
        self, session: AsyncSession, settings: Settings, mailer: Mailer, email: str
    ) -> None:
        """Answers alike whether or not the address exists: the mail, if any,
        leaves in the background after commit."""
        email = normalise_email(email)
        with system_scope("auth.password_reset_request"), tenant_scope(None):
            await reapply_scope(session)
            candidate = await AuthRepository(session).login_candidate(email)
        if (
            candidate is None
            or not candidate["is_active"]
            or candidate["tenant_deleted"]
            or candidate["tenant_status"] != TenantStatus.ACTIVE
        ):
            return
        with tenant_scope(candidate["tenant_id"]):
            await reapply_scope(session)
            token = await one_time_tokens.issue(
                session,
                settings,
                tenant_id=candidate["tenant_id"],
                user_id=candidate["id"],
                purpose=OneTimePurpose.PASSWORD_RESET,
                ttl_seconds=settings.password_reset_ttl_seconds,
            )
            await audit_service.record(
                session,
                None,
                "auth.password_reset_requested",
                "user",
                candidate["id"],
            )
        mail = password_reset_mail(settings, candidate["email"], token)

        async def send() -> None:
            mailer.send_later(mail)

        after_commit(session, send)

    async def confirm_password_reset(
        self, session: AsyncSession, settings: Settings, token: str, new_password: str
    ) -> None:
        """Sets the password and ends every session of the user."""
        row = await one_time_tokens.consume(session, settings, token, OneTimePurpose.PASSWORD_RESET)
        with tenant_scope(row.tenant_id):
            users = UserRepository(session)
            user = await users.get(row.user_id)
            if user is None or not user.is_active:
                raise invalid_token()
            check_password(new_password, user.email, field="new_password")
            new_hash = await hash_password(settings, new_password)
            await users.update(
                user, {"password_hash": new_hash, "tokens_valid_after": datetime.now(UTC)}
            )
            await session_service.revoke_user(session, user.tenant_id, user.id)
            await audit_service.record(
                session, UserActor(user.id), "auth.password_reset", "user", user.id
            )

    async def accept_invitation(
        self,
        session: AsyncSession,
        settings: Settings,
        token: str,
        password: str,
        full_name: str | None,
    ) -> Accepted:
        """Sets the invited user's password, activates them and signs them in."""
        row = await one_time_tokens.consume(session, settings, token, OneTimePurpose.INVITATION)
        with tenant_scope(row.tenant_id):
            users = UserRepository(session)
            user = await users.get(row.user_id)
            if user is None or user.password_hash is not None:
                raise invalid_token()
            check_password(password, user.email)
            values: dict[str, object] = {
                "password_hash": await hash_password(settings, password),
                "is_active": True,
            }
            if full_name is not None:
                values["full_name"] = full_name
            changes = await users.update(user, values)
            changes.pop("password_hash", None)
            await audit_service.record(
                session, UserActor(user.id), "user.invitation_accepted", "user", user.id, changes
            )
            tokens = await session_service.open(
                session, settings, tenant_id=user.tenant_id, user_id=user.id
            )
            out = await self._user_out(session, user)
        return Accepted(user=out, tokens=tokens)

    async def _user_out(self, session: AsyncSession, user: User) -> UserOut:
        names = await role_service.role_names_of(session, user.tenant_id, [user.id])
        return user_out(user, names[user.id])


auth_service = AuthService()
