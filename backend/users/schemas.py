"""User shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from backend.kit.security.passwords import MAX_PASSWORD_LENGTH


def _normalise_email(value: str) -> str:
    return value.strip().lower()


# Deliberately permissive (one `@`, a dotted domain): deliverability is proven
# by the mail a user receives, not by a syntax check; stored lower-case.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(_normalise_email),
]
# The policy (12+ characters, not the email) is checked by the service, which
# knows the email; the schema only caps the size.
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
RoleNames = Annotated[list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=50)]


class UserOut(BaseModel):
    id: UUID
    email: str
    full_name: str | None
    is_active: bool
    roles: list[str]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "grace@acme.example",
                    "password": "correct horse battery staple",
                    "full_name": "Grace Hopper",
                    "roles": ["member"],
                }
            ]
        },
    )

    email: Email
    password: Password
    full_name: FullName | None = None
    roles: RoleNames = Field(default_factory=list)


class InvitationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "grace@acme.example", "roles": ["viewer"], "full_name": "Grace Hopper"}
            ]
        },
    )

    email: Email
    roles: RoleNames = Field(default_factory=list)
    full_name: FullName | None = None


class UserUpdate(BaseModel):
    """Every field optional; only the fields sent are changed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"full_name": "Grace B. Hopper"}, {"is_active": False}]},
    )

    full_name: FullName | None = None
    is_active: bool | None = None


class UserRolesUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"roles": ["admin", "member"]}]}
    )

    roles: RoleNames
