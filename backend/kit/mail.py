"""Outgoing mail: a console backend (development) and an SMTP backend.

`MAIL_BACKEND=console` (the default) writes each message to the log at INFO,
body included, so that a developer can follow an invitation or reset link;
it is meant for development only, since those links carry their token: with
every secret a message carries (`Mail.secrets`: the token) is replaced by
`[redacted]` in what it writes, so logs never hold one.
`MAIL_BACKEND=smtp` sends through `SMTP_HOST` with aiosmtplib.

Messages are sent in the background (`Mailer.send_later`), normally from an
after-commit hook: a request never waits on the mail server, so answering
"we sent a link if the address exists" takes the same time either way, and
no mail leaves for a change that rolled back. Failures are logged (without
the body) and never reach the request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Annotated, Protocol

import aiosmtplib
from fastapi import Depends
from starlette.requests import HTTPConnection

from backend.settings import MailBackendName, Settings

logger = logging.getLogger("dossier.mail")


REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    body: str
    # What the body carries that must never reach a log (tokens).
    secrets: tuple[str, ...] = ()

    def redacted_body(self) -> str:
        body = self.body
        for secret in self.secrets:
            if secret:
                body = body.replace(secret, REDACTED)
        return body


class MailBackend(Protocol):
    async def send(self, mail: Mail) -> None: ...


class ConsoleMailBackend:
    """Logs messages instead of sending them (development)."""

    def __init__(self, sender: str, *, redact: bool = False) -> None:
        self.sender = sender
        self.redact = redact

    async def send(self, mail: Mail) -> None:
        logger.info(
            "mail (console backend)",
            extra={
                "mail_from": self.sender,
                "mail_to": mail.to,
                "subject": mail.subject,
                "body": mail.redacted_body() if self.redact else mail.body,
            },
        )


class SmtpMailBackend:
    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from
        self.hostname = settings.smtp_host
        self.port = settings.smtp_port
        self.username = settings.smtp_username or None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        self.password = password or None
        self.start_tls = settings.smtp_starttls
        self.use_tls = settings.smtp_tls
        self.timeout = settings.smtp_timeout_seconds

    def message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        return message

    async def send(self, mail: Mail) -> None:
        await aiosmtplib.send(
            self.message(mail),
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.start_tls,
            use_tls=self.use_tls,
            timeout=self.timeout,
        )


def create_backend(settings: Settings) -> MailBackend:
    if settings.mail_backend == MailBackendName.SMTP:
        return SmtpMailBackend(settings)
    return ConsoleMailBackend(settings.mail_from, redact=True)


class Mailer:
    """Sends in background tasks and keeps them until done, so that shutdown
    can wait for mail already promised to a user."""

    def __init__(self, backend: MailBackend) -> None:
        self.backend = backend
        self._pending: set[asyncio.Task[None]] = set()

    async def send(self, mail: Mail) -> None:
        await self.backend.send(mail)

    def send_later(self, mail: Mail) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(mail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, mail: Mail) -> None:
        try:
            await self.backend.send(mail)
        except Exception as exc:
            logger.error(
                "mail not sent",
                extra={"subject": mail.subject, "error": f"{type(exc).__name__}: {exc}"},
            )

    async def drain(self, wait_seconds: float = 10.0) -> None:
        """Wait (up to `wait_seconds`) for messages being sent."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=wait_seconds)


def create_mailer(settings: Settings) -> Mailer:
    return Mailer(create_backend(settings))


async def get_mailer(connection: HTTPConnection) -> Mailer:
    mailer: Mailer = connection.app.state.mailer
    return mailer


AppMailer = Annotated[Mailer, Depends(get_mailer)]
