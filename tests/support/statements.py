"""Watching the statements an app sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def user_page_cache_hits(app: Any) -> Iterator[list[bool]]:
    """For each user-list page the app sends meanwhile (a statement from
    `users` with an `ORDER BY`), whether SQLAlchemy's compiled cache had it."""
    hits: list[bool] = []

    def _record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any
    ) -> None:
        if "FROM users" in statement and "ORDER BY" in statement:
            hits.append(context.cache_hit == context.dialect.CACHE_HIT)

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", _record)
    try:
        yield hits
    finally:
        event.remove(engine, "after_cursor_execute", _record)
