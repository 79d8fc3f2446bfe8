"""`/api/v1/auth`: signup, the OAuth2 password flow, sessions, passwords,
invitations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, params, status
from fastapi.security import OAuth2PasswordRequestForm

from backend.auth.account import account_service
from backend.auth.deps import CurrentPrincipal
from backend.auth.limits import login_rate_limit, password_reset_rate_limit
from backend.auth.login import login_service
from backend.auth.recovery import recovery_service
from backend.auth.refresh import refresh_service
from backend.auth.schemas import (
    InvitationAcceptIn,
    InvitationAcceptOut,
    MeOut,
    PasswordChangeIn,
    PasswordResetConfirmIn,
    PasswordResetRequestIn,
    PasswordResetRequestOut,
    RefreshIn,
    SignupIn,
    SignupOut,
    TenantBrief,
    TokenOut,
)
from backend.auth.sessions import TokenPair
from backend.auth.throttle import login_throttle
from backend.kit.db import Database
from backend.kit.deps import AppSettings, DbSession, RedisClient, get_database
from backend.kit.errors import Unauthenticated
from backend.kit.mail import AppMailer
from backend.kit.ratelimit import client_ip
from backend.users.service import user_out

router = APIRouter(prefix="/auth", tags=["auth"])

AppDatabase = Annotated[Database, Depends(get_database)]

# Rate limits of the public routes are dependencies added here (see
# `backend/auth/limits.py`); the routes themselves do no limiting.
LOGIN_DEPENDENCIES: list[params.Depends] = [Depends(login_rate_limit)]
PASSWORD_RESET_DEPENDENCIES: list[params.Depends] = [Depends(password_reset_rate_limit)]


def _token_out(tokens: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
    )


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=SignupOut,
    description="Creates a tenant (with its system roles) and its owner, and signs the "
    "owner in. 404 when `SIGNUP_ENABLED=false`.",
)
async def signup(
    data: SignupIn, session: DbSession, settings: AppSettings, response: Response
) -> SignupOut:
    signed_up = await login_service.signup(session, settings, data)
    tenant, owner = signed_up.provisioned.tenant, signed_up.provisioned.owner
    response.headers["Location"] = "/api/v1/tenant"
    return SignupOut(
        **_token_out(signed_up.tokens).model_dump(),
        tenant=TenantBrief.model_validate(tenant),
        user=user_out(owner, signed_up.roles),
    )


@router.post(
    "/token",
    response_model=TokenOut,
    dependencies=LOGIN_DEPENDENCIES,
    description="OAuth2 password flow: form fields `username` (the email) and "
    "`password`. Wrong credentials, inactive or deleted users: 401; a suspended "
    "organisation: 403 `tenant_suspended`.",
)
async def create_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: DbSession,
    database: AppDatabase,
    settings: AppSettings,
) -> TokenOut:
    try:
        tokens = await login_service.login(
            session, database, settings, form.username, form.password
        )
    except Unauthenticated:
        await login_throttle(request).failed(form.username, client_ip(request))
        raise
    return _token_out(tokens)


@router.post(
    "/refresh",
    response_model=TokenOut,
    description="Rotates: the refresh token sent is spent and a new pair returned. "
    "A spent token sent again revokes its whole session.",
)
async def refresh_token(
    data: RefreshIn, session: DbSession, database: AppDatabase, settings: AppSettings
) -> TokenOut:
    return _token_out(
        await refresh_service.refresh(session, database, settings, data.refresh_token)
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    description="Ends this session: the access token is revoked and the session's "
    "refresh tokens too. No body.",
)
async def logout(
    principal: CurrentPrincipal, session: DbSession, redis: RedisClient, settings: AppSettings
) -> Response:
    await account_service.logout(session, redis, settings, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    description="Ends every session of the user, this one included.",
)
async def logout_all(
    principal: CurrentPrincipal, session: DbSession, redis: RedisClient, settings: AppSettings
) -> Response:
    await account_service.logout_all(session, redis, settings, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    response_model=MeOut,
    description="The signed-in user, their tenant, roles and effective permissions.",
)
async def get_me(principal: CurrentPrincipal) -> MeOut:
    return account_service.me(principal)


@router.post(
    "/password",
    response_model=TokenOut,
    description="Changes the password and ends every other session. This session "
    "continues with the pair returned (the access token sent is void afterwards). "
    "A wrong `current_password` is 403.",
)
async def change_password(
    data: PasswordChangeIn,
    principal: CurrentPrincipal,
    session: DbSession,
    database: AppDatabase,
    settings: AppSettings,
) -> TokenOut:
    tokens = await account_service.change_password(
        session, database, settings, principal, data.current_password, data.new_password
    )
    return _token_out(tokens)


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetRequestOut,
    dependencies=PASSWORD_RESET_DEPENDENCIES,
    description="Mails a single-use, expiring reset link. The answer is the same "
    "whether or not the address belongs to an account.",
)
async def request_password_reset(
    data: PasswordResetRequestIn, session: DbSession, settings: AppSettings, mailer: AppMailer
) -> PasswordResetRequestOut:
    await recovery_service.request_password_reset(session, settings, mailer, data.email)
    return PasswordResetRequestOut()


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    description="Sets the new password with the mailed token and ends every session "
    "of the user. An unknown, expired or used token is 422.",
)
async def confirm_password_reset(
    data: PasswordResetConfirmIn, session: DbSession, database: AppDatabase, settings: AppSettings
) -> Response:
    await recovery_service.confirm_password_reset(
        session, database, settings, data.token, data.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/accept",
    response_model=InvitationAcceptOut,
    description="Sets the invited user's password, activates the account and signs "
    "the user in. An unknown, expired or used token is 422.",
)
async def accept_invitation(
    data: InvitationAcceptIn, session: DbSession, database: AppDatabase, settings: AppSettings
) -> InvitationAcceptOut:
    accepted = await recovery_service.accept_invitation(
        session, database, settings, data.token, data.password, data.full_name
    )
    return InvitationAcceptOut(**_token_out(accepted.tokens).model_dump(), user=accepted.user)
