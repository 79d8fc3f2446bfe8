"""The tenancy scope that row-level security reads.

Two context variables say whose rows the code is working on:

* `app.tenant_id` — the tenant whose rows the policies let through;
* `app.system_scope` — the name of an explicit cross-tenant scope, which the
  policies also honour.

Every transaction copies them into transaction-local PostgreSQL settings
(`set_config(..., true)`, see `backend.kit.scoped_connection`), so they can
never leak into the next request that gets the same pooled connection.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger("dossier.db")

_tenant_id: ContextVar[UUID | None] = ContextVar("dossier_tenant_id", default=None)
_system_scope: ContextVar[str | None] = ContextVar("dossier_system_scope", default=None)


def current_tenant_id() -> UUID | None:
    return _tenant_id.get()


def current_system_scope() -> str | None:
    return _system_scope.get()


@contextmanager
def tenant_scope(tenant_id: UUID | None) -> Iterator[None]:
    """Bind to one tenant (None: to no tenant, as platform admin routes do
    inside their system scope, so that no query is narrowed to the admin's
    own tenant)."""
    token = _tenant_id.set(tenant_id)
    try:
        yield
    finally:
        _tenant_id.reset(token)


@contextmanager
def system_scope(name: str) -> Iterator[None]:
    """Cross-tenant access, named so that every use can be found and logged."""
    logger.debug("entering system scope", extra={"system_scope": name})
    token = _system_scope.set(name)
    try:
        yield
    finally:
        _system_scope.reset(token)


SET_SCOPE = text(
    "SELECT set_config('app.tenant_id', :tenant, true),"
    " set_config('app.system_scope', :scope, true)"
)


def scope_params() -> dict[str, str]:
    """The scope in force, as the parameters of `SET_SCOPE`."""
    tenant = _tenant_id.get()
    return {"tenant": str(tenant) if tenant else "", "scope": _system_scope.get() or ""}


_SAFE_SETTING = re.compile(r"^[A-Za-z0-9_.:-]*$")


def scope_statement(params: dict[str, str]) -> str:
    """The same `set_config` calls as `SET_SCOPE`, as literal SQL for the
    simple-query protocol (which takes no parameters). The values are tenant
    ids (UUIDs) and scope names from the code; anything else is refused."""
    for value in params.values():
        if not _SAFE_SETTING.match(value):
            raise ValueError("tenancy scope values must be plain identifiers")
    return (
        f"SELECT set_config('app.tenant_id', '{params['tenant']}', true),"
        f" set_config('app.system_scope', '{params['scope']}', true)"
    )


async def _apply_to_transaction(session: AsyncSession) -> None:
    if session.in_transaction():
        await session.execute(SET_SCOPE, scope_params())


@asynccontextmanager
async def scope(
    session: AsyncSession | None, tenant_id: UUID | None, *, system: str | None = None
) -> AsyncIterator[None]:
    """Work as tenant `tenant_id` (None: no tenant), cross-tenant when
    `system` names a system scope, for the code inside AND for the
    transaction `session` has under way, in one step, so that the context
    and the transaction's `app.tenant_id` cannot disagree. On leaving, both
    return to the enclosing scope. A transaction begun inside is scoped by
    the begin hook as usual."""
    with contextlib.ExitStack() as stack:
        if system is not None:
            stack.enter_context(system_scope(system))
        stack.enter_context(tenant_scope(tenant_id))
        if session is not None:
            await _apply_to_transaction(session)
        yield
        if session is not None:
            await session.flush()  # what changed inside is written inside
    if session is not None:
        await _apply_to_transaction(session)
