"""Shapes of the auth routes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backend.users.schemas import Email, FullName, Password, UserOut

Slug = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    ),
]
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds the access token is valid for")


class TenantBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    slug: str
    plan: str
    status: str


class SignupIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_name": "Acme Legal",
                    "tenant_slug": "acme-legal",
                    "email": "ada@acme.example",
                    "password": "correct horse battery staple",
                    "full_name": "Ada Lovelace",
                }
            ]
        },
    )

    tenant_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    tenant_slug: Slug | None = None
    email: Email
    password: Password
    full_name: FullName | None = None


class SignupOut(TokenOut):
    tenant: TenantBrief
    user: UserOut


class RefreshIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"refresh_token": "kJ3v9QmZtYc1rP0wq8sXbN2dL5gH7aUe4fTiVoBy6Rk"}]
        }
    )

    refresh_token: OpaqueToken


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "current_password": "correct horse battery staple",
                    "new_password": "a longer, newer passphrase",
                }
            ]
        },
    )

    current_password: Password
    new_password: Password


class PasswordResetRequestIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ada@acme.example"}]})

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]


class PasswordResetRequestOut(BaseModel):
    detail: str = "If the address belongs to an account, a reset link has been sent to it."


class PasswordResetConfirmIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "token": "Zt4xq1Lr8mWcN0vB6yHs3pKd9aFe2gUj5iTo7RbQwYc",
                    "new_password": "a longer, newer passphrase",
                }
            ]
        },
    )

    token: OpaqueToken
    new_password: Password


class InvitationAcceptIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "token": "Zt4xq1Lr8mWcN0vB6yHs3pKd9aFe2gUj5iTo7RbQwYc",
                    "password": "correct horse battery staple",
                    "full_name": "Grace Hopper",
                }
            ]
        },
    )

    token: OpaqueToken
    password: Password
    full_name: FullName | None = None


class InvitationAcceptOut(TokenOut):
    user: UserOut


class MeOut(UserOut):
    tenant: TenantBrief
    permissions: list[str]
    is_superadmin: bool
