"""Hot lists (`HotList`): statements built once per shape, each request's
values bound, read on `Database.read`'s tenant-scoped connection."""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, func, insert, select, text

from backend.kit.db import Database, tenant_scope
from backend.kit.listing import HotList
from backend.kit.pagination import ListQuery, PageResult, SortSpec, decode_cursor
from backend.users.models import User
from tests.factories import make_tenant
from tests.support.statements import user_page_cache_hits


class CountingBuilder:
    """A user list's builder that counts the statements it builds."""

    def __init__(self) -> None:
        self.built = 0

    def __call__(self, binds: Mapping[str, Any], include_deleted: Hashable) -> Select[Any]:
        self.built += 1
        stmt = select(User.id, User.email, User.full_name, User.created_at).where(
            User.tenant_id == binds["tenant_id"]
        )
        if not include_deleted:
            stmt = stmt.where(User.deleted_at.is_(None))
        if "email" in binds:
            stmt = stmt.where(User.email == binds["email"])
        return stmt


async def _seed(app: Any, tenant_id: uuid.UUID, count: int) -> list[str]:
    """Users with equal names and missing names among them (sort stability
    and `NULLS LAST` paging); their emails."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "email": f"u{index}-{uuid.uuid4().hex[:6]}@example.test",
            "full_name": None if index % 4 == 0 else f"name-{index // 3:02d}",
            "created_at": base + timedelta(minutes=index),
            "updated_at": base,
        }
        for index in range(count)
    ]
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            await session.execute(insert(User), rows)
    return [row["email"] for row in rows]


async def _page(
    app: Any,
    users: HotList,
    tenant_id: uuid.UUID,
    query: ListQuery,
    *,
    include_deleted: bool = False,
    **filters: Any,
) -> PageResult[Any]:
    with tenant_scope(tenant_id):
        async with app.state.db.read() as connection:
            values = {"tenant_id": tenant_id, **filters}
            return await users.page(connection, query, values, include_deleted)


async def _live_emails(app: Any, tenant_id: uuid.UUID) -> set[str]:
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            stmt = select(User.email).where(User.deleted_at.is_(None))
            return set((await session.execute(stmt)).scalars())


async def test_a_shape_is_built_once_and_answers_with_each_request_s_values(app: Any) -> None:
    """The cached statement holds no request's values: two tenants through
    the same shape see their own rows, and its compiled SQL is reused."""
    tenants = [await make_tenant(app, name) for name in ("A", "B")]
    for tenant in tenants:
        await _seed(app, tenant.id, 3)
    builder = CountingBuilder()
    users = HotList(User, builder)
    query = ListQuery(sort=SortSpec("created_at", True), keyset=True, page_size=50)
    with user_page_cache_hits(app) as hits:
        for _ in range(2):
            for tenant in tenants:
                page = await _page(app, users, tenant.id, query)
                assert {row["email"] for row in page.items} == await _live_emails(app, tenant.id)
    assert builder.built == 1
    assert len(hits) == 4
    assert hits[1:] == [True] * 3, hits


async def test_another_filter_or_flag_is_another_shape(app: Any) -> None:
    tenant = await make_tenant(app, "A")
    emails = await _seed(app, tenant.id, 4)
    builder = CountingBuilder()
    users = HotList(User, builder)
    query = ListQuery(sort=SortSpec("created_at", False), keyset=True, page_size=50)
    everyone = await _page(app, users, tenant.id, query)
    assert len(everyone.items) == 5
    for email in emails[:2]:  # the same shape with another value: no rebuild
        page = await _page(app, users, tenant.id, query, email=email)
        assert [row["email"] for row in page.items] == [email]
    assert builder.built == 2
    # A filter given as None is not given: the unfiltered shape again.
    assert len((await _page(app, users, tenant.id, query, email=None)).items) == 5
    assert builder.built == 2
    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            await session.execute(
                text("UPDATE users SET deleted_at = now() WHERE email = :email"),
                {"email": emails[0]},
            )
    assert len((await _page(app, users, tenant.id, query)).items) == 4
    with_deleted = await _page(app, users, tenant.id, query, include_deleted=True)
    assert len(with_deleted.items) == 5
    assert builder.built == 3


@pytest.mark.parametrize(
    "sort",
    [SortSpec("created_at", False), SortSpec("full_name", True), SortSpec("full_name", False)],
)
async def test_keyset_walk_visits_every_row_once_in_order(app: Any, sort: SortSpec) -> None:
    """Cursors after a row with a value and after one without (`NULLS
    LAST`) are shapes of their own; the walk misses and repeats nothing."""
    tenant = await make_tenant(app, "A")
    await _seed(app, tenant.id, 30)
    users = HotList(User, CountingBuilder())
    seen: list[Any] = []
    after = None
    while True:
        query = ListQuery(sort=sort, page_size=7, keyset=True, after=after)
        page = await _page(app, users, tenant.id, query)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        after = decode_cursor(page.next_cursor, sort)
    assert len(seen) == 31
    assert len({row["id"] for row in seen}) == 31
    named = [row for row in seen if row[sort.field] is not None]
    assert seen[: len(named)] == named  # NULLS LAST, both directions
    keys = [(row[sort.field], row["id"]) for row in named]
    assert keys == sorted(keys, reverse=sort.descending)


async def test_offset_pages_count_only_the_current_tenant(app: Any) -> None:
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    await _seed(app, first.id, 24)
    await _seed(app, second.id, 5)
    users = HotList(User, CountingBuilder())
    for page_number, size in ((1, 10), (3, 10)):
        query = ListQuery(sort=SortSpec("created_at", False), page=page_number, page_size=10)
        result = await _page(app, users, first.id, query)
        assert result.total == 25
        assert len(result.items) == size if page_number == 1 else len(result.items) == 5


async def test_least_recently_used_shapes_are_dropped(app: Any) -> None:
    tenant = await make_tenant(app, "A")
    emails = await _seed(app, tenant.id, 2)
    builder = CountingBuilder()
    users = HotList(User, builder, max_shapes=2)
    query = ListQuery(sort=SortSpec("created_at", False), keyset=True, page_size=10)
    other_sort = ListQuery(sort=SortSpec("email", False), keyset=True, page_size=10)
    await _page(app, users, tenant.id, query)
    await _page(app, users, tenant.id, query, email=emails[0])
    await _page(app, users, tenant.id, other_sort)  # drops the first shape
    assert builder.built == 3
    again = await _page(app, users, tenant.id, query)
    assert builder.built == 4
    assert len(again.items) == 3


async def test_read_applies_the_scope_without_a_ping(database_url: str, app: Any) -> None:
    """Without the checkout's ping (which begins the transaction in scope),
    `read` sets the scope itself: row-level security still confines it."""
    first = await make_tenant(app, "A")
    second = await make_tenant(app, "B")
    await _seed(app, second.id, 3)
    database = Database(
        database_url,
        app_role=app.state.settings.db_app_role,
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=False,
    )
    try:
        count = select(func.count()).select_from(User)  # no tenant filter: RLS alone
        for tenant, expected in ((first, 1), (second, 4), (first, 1)):
            with tenant_scope(tenant.id):
                async with database.read() as connection:
                    assert (await connection.execute(count)).scalar() == expected
    finally:
        await database.dispose()
