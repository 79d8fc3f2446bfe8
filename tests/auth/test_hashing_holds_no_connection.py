"""No database connection is held while a password is hashed or verified
(argon2 takes tens of milliseconds on purpose): signup, login, password
change, password reset, invitation acceptance and the creation of a user or
a tenant by an admin hash before their first query, or between short
transactions of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

from backend.auth.models import OneTimePurpose
from backend.auth.one_time import one_time_tokens
from backend.kit.db import tenant_scope
from backend.kit.security import passwords
from tests.factories import PASSWORD, auth, login, make_tenant, unique_email

NEW_PASSWORD = "a much better passphrase 42"


@pytest.fixture
def checked_out(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The connections the app's pool has checked out at the moment each
    hash or verification runs."""
    seen: list[int] = []
    real = passwords._off_loop

    async def recording(settings: Any, function: Callable[..., Any], *args: str) -> Any:
        seen.append(app.state.db.engine.pool.checkedout())
        return await real(settings, function, *args)

    monkeypatch.setattr(passwords, "_off_loop", recording)
    return seen


async def _issue(app: Any, tenant_id: UUID, user_id: UUID, purpose: OneTimePurpose) -> str:
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            return await one_time_tokens.issue(
                session,
                app.state.settings,
                tenant_id=tenant_id,
                user_id=user_id,
                purpose=purpose,
                ttl_seconds=600,
            )


async def test_signup_hashes_holding_no_connection(
    client: httpx.AsyncClient, checked_out: list[int]
) -> None:
    answer = await client.post(
        "/api/v1/auth/signup",
        json={"tenant_name": "Acme", "email": unique_email("founder"), "password": PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    assert checked_out == [0]


async def test_login_verifies_holding_no_connection(
    client: httpx.AsyncClient, app: Any, checked_out: list[int]
) -> None:
    tenant = await make_tenant(app)
    checked_out.clear()
    await login(client, tenant.owner.email)
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": tenant.owner.email, "password": NEW_PASSWORD}
    )
    unknown = await client.post(
        "/api/v1/auth/token", data={"username": unique_email("nobody"), "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert len(checked_out) >= 3  # one verification each (the unknown email: a dummy's)
    assert set(checked_out) == {0}


async def test_password_change_hashes_holding_no_connection(
    client: httpx.AsyncClient, app: Any, checked_out: list[int]
) -> None:
    tenant = await make_tenant(app)
    tokens = await login(client, tenant.owner.email)
    checked_out.clear()
    answer = await client.post(
        "/api/v1/auth/password",
        headers=auth(tokens),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    assert checked_out == [0, 0]  # the current password verified, the new one hashed
    await login(client, tenant.owner.email, NEW_PASSWORD)


async def test_password_reset_hashes_holding_no_connection(
    client: httpx.AsyncClient, app: Any, checked_out: list[int]
) -> None:
    tenant = await make_tenant(app)
    token = await _issue(app, tenant.id, tenant.owner.id, OneTimePurpose.PASSWORD_RESET)
    checked_out.clear()
    answer = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert answer.status_code == 204, answer.text
    assert checked_out == [0]
    # A token that is no good costs no hash at all.
    again = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": PASSWORD}
    )
    assert again.status_code == 422
    assert checked_out == [0]


async def test_invitation_acceptance_hashes_holding_no_connection(
    client: httpx.AsyncClient, app: Any, checked_out: list[int]
) -> None:
    tenant = await make_tenant(app)
    owner = await login(client, tenant.owner.email)
    invited = await client.post(
        "/api/v1/users/invitations", headers=auth(owner), json={"email": unique_email("invitee")}
    )
    assert invited.status_code == 201, invited.text
    token = await _issue(app, tenant.id, UUID(invited.json()["id"]), OneTimePurpose.INVITATION)
    checked_out.clear()
    answer = await client.post(
        "/api/v1/auth/invitations/accept", json={"token": token, "password": NEW_PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    assert checked_out == [0]


async def test_user_created_by_admin_is_hashed_holding_no_connection(
    client: httpx.AsyncClient, app: Any, checked_out: list[int]
) -> None:
    tenant = await make_tenant(app)
    owner = await login(client, tenant.owner.email)
    checked_out.clear()
    answer = await client.post(
        "/api/v1/users",
        headers=auth(owner),
        json={"email": unique_email("made"), "password": NEW_PASSWORD, "roles": ["member"]},
    )
    assert answer.status_code == 201, answer.text
    assert checked_out == [0]


async def test_tenant_created_by_platform_admin_is_hashed_holding_no_connection(
    client: httpx.AsyncClient, app: Any, checked_out: list[int]
) -> None:
    platform = await make_tenant(app, "Platform", superadmin=True)
    admin = await login(client, platform.owner.email)
    checked_out.clear()
    answer = await client.post(
        "/api/v1/admin/tenants",
        headers=auth(admin),
        json={"name": "Made", "owner_email": unique_email("owner"), "owner_password": PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    assert checked_out == [0]
