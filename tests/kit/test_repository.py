"""The generic repository: tenant filter, soft deletes, both paginations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import String, insert, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

from backend.kit.db import tenant_scope
from backend.kit.errors import NotFound, ValidationFailed
from backend.kit.pagination import ListQuery, SortSpec, decode_cursor
from backend.kit.repository import NoTenantScope
from backend.users.models import User
from backend.users.repository import UserRepository
from tests.factories import make_tenant
from tests.support.statements import user_page_cache_hits


async def _seed_users(app: Any, tenant_id: uuid.UUID, count: int) -> None:
    """Users with distinct and some equal names, for sort stability checks."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "email": f"u{index}-{uuid.uuid4().hex[:6]}@example.test",
            "full_name": f"name-{index // 3:02d}",
            "created_at": base + timedelta(minutes=index),
            "updated_at": base,
        }
        for index in range(count)
    ]
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            await session.execute(insert(User), rows)


async def _walk_keyset(app: Any, tenant_id: uuid.UUID, sort: SortSpec) -> list[User]:
    seen: list[User] = []
    after = None
    with tenant_scope(tenant_id):
        while True:
            async with app.state.db.transaction() as session:
                repository = UserRepository(session)
                query = ListQuery(sort=sort, page_size=7, keyset=True, after=after)
                page = await repository.paginate(repository.select(), query)
            seen.extend(page.items)
            if page.next_cursor is None:
                return seen
            after = decode_cursor(page.next_cursor, sort)


@pytest.mark.parametrize(
    "sort",
    [SortSpec("created_at", False), SortSpec("created_at", True), SortSpec("full_name", True)],
)
async def test_keyset_walk_visits_every_row_once_in_order(app: Any, sort: SortSpec) -> None:
    tenant = await make_tenant(app, "A")
    await _seed_users(app, tenant.id, 30)
    rows = await _walk_keyset(app, tenant.id, sort)
    assert len(rows) == 31
    assert len({row.id for row in rows}) == 31
    keys = [(getattr(row, sort.field) or "", row.id) for row in rows]
    assert keys == sorted(keys, reverse=sort.descending)


async def test_offset_pages_count_only_the_current_tenant(app: Any) -> None:
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    await _seed_users(app, first.id, 24)
    await _seed_users(app, second.id, 5)
    with tenant_scope(first.id):
        async with app.state.db.transaction() as session:
            repository = UserRepository(session)
            query = ListQuery(sort=SortSpec("created_at", False), page=3, page_size=10)
            result = await repository.paginate(repository.select(), query)
    envelope = result.envelope([row.id for row in result.items])
    assert envelope.model_dump()["total"] == 25
    assert envelope.model_dump()["pages"] == 3
    assert len(result.items) == 5
    assert {row.tenant_id for row in result.items} == {first.id}


async def test_soft_deleted_rows_hide_unless_asked(app: Any) -> None:
    tenant = await make_tenant(app, "A")
    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            repository = UserRepository(session)
            user = await repository.get_or_raise(tenant.owner.id)
            await repository.soft_delete(user, by=None)
        async with app.state.db.transaction() as session:
            repository = UserRepository(session)
            with pytest.raises(NotFound):
                await repository.get_or_raise(tenant.owner.id)
            assert await repository.get(tenant.owner.id, include_deleted=True) is not None


async def test_other_tenants_rows_are_not_found(app: Any) -> None:
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    with tenant_scope(first.id):
        async with app.state.db.transaction() as session:
            assert await UserRepository(session).get(second.owner.id) is None


async def test_query_without_any_scope_is_a_programming_error(app: Any) -> None:
    async with app.state.db.transaction() as session:
        with pytest.raises(NoTenantScope):
            UserRepository(session).select()


def test_cursor_from_another_sort_is_refused() -> None:
    from backend.kit.pagination import encode_cursor

    cursor = encode_cursor(SortSpec("created_at", True), datetime.now(UTC), uuid.uuid4())
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, SortSpec("created_at", False))
    with pytest.raises(ValidationFailed):
        decode_cursor("garbage!!", SortSpec("created_at", True))


async def test_row_pages_reuse_the_compiled_statement_with_each_request_s_values(
    app: Any,
) -> None:
    """`paginate_rows` relies on SQLAlchemy's compiled-statement cache (no
    cache of its own): the same shape of list with other values is a cache
    hit and answers for those values; another filter is another statement."""
    tenants = [await make_tenant(app, name) for name in ("A", "B")]
    for tenant in tenants:
        await _seed_users(app, tenant.id, 3)
    with user_page_cache_hits(app) as hits:
        query = ListQuery(sort=SortSpec("created_at", True), keyset=True, page_size=10)

        async def emails(tenant_id: uuid.UUID, **filters: Any) -> set[str]:
            with tenant_scope(tenant_id):
                async with app.state.db.transaction() as session:
                    repository = UserRepository(session)
                    stmt = repository.listed(
                        literal([], ARRAY(String)), tenant_id, include_deleted=False, **filters
                    )
                    page = await repository.paginate_rows(stmt, query)
            return {row["email"] for row in page.items}

        for _ in range(2):  # the first tenant's list may compile; the second's may not
            for tenant in tenants:
                with tenant_scope(tenant.id):
                    async with app.state.db.transaction() as session:
                        own = set(
                            (
                                await session.execute(
                                    select(User.email).where(User.tenant_id == tenant.id)
                                )
                            )
                            .scalars()
                            .all()
                        )
                assert await emails(tenant.id) == own
        # The second round's pages, same shape as the first's: from the cache.
        assert hits[-2:] == [True, True], hits
        hits.clear()
        first = sorted(await emails(tenants[0].id))[0]
        pattern = UserRepository.email_pattern(first)
        assert await emails(tenants[0].id, email_pattern=pattern) == {first}
        assert await emails(tenants[1].id, email_pattern=pattern) == set()
        assert hits[-1], hits
        assert await emails(tenants[0].id, active=False) == set()
