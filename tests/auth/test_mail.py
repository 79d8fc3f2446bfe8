"""Invitations and password resets through a real SMTP server on loopback
(aiosmtpd): the token is read from the message received and the flow
completed with it."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from backend.kit.mail import ConsoleMailBackend, Mail
from backend.main import create_app
from backend.settings import Settings
from tests.factories import PASSWORD, auth, login, make_tenant, run_sql, unique_email

NEW_PASSWORD = "reset to something long 7"


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    async def wait_for(self, to: str, count: int = 1, seconds: float = 10.0) -> list[Message]:
        async with asyncio.timeout(seconds):
            while True:
                found = [message for message in self.messages if message["To"] == to]
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.02)

    def to(self, address: str) -> list[Message]:
        return [message for message in self.messages if message["To"] == address]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
async def smtp_app(settings: Settings, smtp_server: tuple[Inbox, int]) -> AsyncIterator[Any]:
    _, port = smtp_server
    configured = settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "mail_from": "Dossier <dossier@example.test>",
            "public_base_url": "https://dossier.example.test/",
        }
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def smtp_client(smtp_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=smtp_app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _token(message: Message, path: str) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    match = re.search(rf"https://dossier\.example\.test{path}\?token=([A-Za-z0-9_\-]+)", text)
    assert match, text
    return match.group(1)


async def test_invitation_by_mail(
    smtp_client: httpx.AsyncClient, smtp_app: Any, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp_server
    tenant = await make_tenant(smtp_app, roles=("owner",))
    owner = await login(smtp_client, tenant.owner.email)
    invitee = unique_email("invitee")

    response = await smtp_client.post(
        "/api/v1/users/invitations",
        headers=auth(owner),
        json={"email": invitee.upper(), "roles": ["member"]},
    )
    assert response.status_code == 201, response.text
    invited = response.json()
    assert response.headers["location"] == f"/api/v1/users/{invited['id']}"
    assert invited["email"] == invitee
    assert invited["is_active"] is False
    assert invited["roles"] == ["member"]
    # Not yet able to sign in.
    refused = await smtp_client.post(
        "/api/v1/auth/token", data={"username": invitee, "password": PASSWORD}
    )
    assert refused.status_code == 401

    [message] = await inbox.wait_for(invitee)
    assert message["From"] == "Dossier <dossier@example.test>"
    assert "invited" in message["Subject"].lower()
    token = _token(message, "/accept-invitation")

    weak = await smtp_client.post(
        "/api/v1/auth/invitations/accept", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 422  # and the invitation is still good:
    accepted = await smtp_client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": token, "password": PASSWORD, "full_name": "Ivy Invitee"},
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["user"]["is_active"] is True
    assert body["user"]["full_name"] == "Ivy Invitee"
    me = await smtp_client.get("/api/v1/auth/me", headers=auth(body))
    assert me.status_code == 200
    assert me.json()["roles"] == ["member"]
    await login(smtp_client, invitee)

    again = await smtp_client.post(
        "/api/v1/auth/invitations/accept", json={"token": token, "password": NEW_PASSWORD}
    )
    assert again.status_code == 422
    assert again.json()["code"] == "validation_error"

    actions = [
        row[0]
        for row in await run_sql(
            smtp_app,
            "SELECT action FROM audit_events WHERE resource_id = :id ORDER BY created_at",
            id=invited["id"],
        )
    ]
    assert actions == [
        "user.invited",
        "auth.login_failed",  # the attempt before accepting
        "user.invitation_accepted",
    ]


async def test_expired_invitation(
    smtp_client: httpx.AsyncClient, smtp_app: Any, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp_server
    tenant = await make_tenant(smtp_app, roles=("owner",))
    owner = await login(smtp_client, tenant.owner.email)
    invitee = unique_email("late")
    response = await smtp_client.post(
        "/api/v1/users/invitations", headers=auth(owner), json={"email": invitee}
    )
    assert response.status_code == 201
    [message] = await inbox.wait_for(invitee)
    await run_sql(smtp_app, "UPDATE one_time_tokens SET expires_at = now() - interval '1 minute'")
    expired = await smtp_client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": _token(message, "/accept-invitation"), "password": PASSWORD},
    )
    assert expired.status_code == 422


async def test_password_reset_by_mail(
    smtp_client: httpx.AsyncClient, smtp_app: Any, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp_server
    tenant = await make_tenant(smtp_app, roles=("owner",))
    address = tenant.owner.email
    session = await login(smtp_client, address)

    known = await smtp_client.post(
        "/api/v1/auth/password-reset/request", json={"email": address.upper()}
    )
    unknown = await smtp_client.post(
        "/api/v1/auth/password-reset/request", json={"email": "nobody-here@example.test"}
    )
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()

    [message] = await inbox.wait_for(address)
    assert "reset" in message["Subject"].lower()
    token = _token(message, "/reset-password")

    confirmed = await smtp_client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204, confirmed.text
    # Every session ended; the old password is gone, the new one works.
    assert (await smtp_client.get("/api/v1/auth/me", headers=auth(session))).status_code == 401
    old = await smtp_client.post(
        "/api/v1/auth/token", data={"username": address, "password": PASSWORD}
    )
    assert old.status_code == 401
    await login(smtp_client, address, NEW_PASSWORD)

    reused = await smtp_client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": PASSWORD}
    )
    assert reused.status_code == 422
    await asyncio.sleep(0.2)  # nothing else arrives for the unknown address
    assert inbox.to("nobody-here@example.test") == []


async def test_only_one_reset_link_works(
    smtp_client: httpx.AsyncClient, smtp_app: Any, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp_server
    tenant = await make_tenant(smtp_app, roles=("owner",))
    address = tenant.owner.email
    for _ in range(2):
        response = await smtp_client.post(
            "/api/v1/auth/password-reset/request", json={"email": address}
        )
        assert response.status_code == 202
    first, second = await inbox.wait_for(address, count=2)
    used = await smtp_client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": _token(second, "/reset-password"), "new_password": NEW_PASSWORD},
    )
    assert used.status_code == 204
    stale = await smtp_client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": _token(first, "/reset-password"), "new_password": PASSWORD},
    )
    assert stale.status_code == 422
    weak = await smtp_client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": "made-up-token", "new_password": NEW_PASSWORD},
    )
    assert weak.status_code == 422


async def test_console_backend_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    backend = ConsoleMailBackend("Dossier <dev@example.test>")
    with caplog.at_level(logging.INFO, logger="dossier.mail"):
        await backend.send(Mail(to="dev@example.test", subject="Hello", body="Body text"))
    [record] = [record for record in caplog.records if record.name == "dossier.mail"]
    assert record.__dict__["mail_to"] == "dev@example.test"
    assert record.__dict__["body"] == "Body text"


async def test_console_mail_never_logs_the_token(
    caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    from backend.auth.one_time import invitation_mail, password_reset_mail
    from backend.kit.mail import create_backend

    backend = create_backend(settings)
    token = "tok_" + "Q" * 40
    with caplog.at_level(logging.INFO, logger="dossier.mail"):
        await backend.send(password_reset_mail(settings, "a@example.test", token))
        await backend.send(invitation_mail(settings, "b@example.test", token, "Ann"))
    records = [record for record in caplog.records if record.name == "dossier.mail"]
    assert len(records) == 2
    for record in records:
        assert token not in record.__dict__["body"]
        assert "[redacted]" in record.__dict__["body"]
        assert token not in record.getMessage()


def test_nginx_logs_the_path_without_its_query_string() -> None:
    from pathlib import Path

    conf = (Path(__file__).resolve().parents[2] / "nginx" / "nginx.conf").read_text()
    log_format = conf[conf.index("log_format") : conf.index("access_log")]
    assert "$request_uri" not in log_format
    assert '"uri":"$uri"' in log_format
