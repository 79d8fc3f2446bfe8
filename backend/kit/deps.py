"""Dependencies shared by every domain: settings, the request's database
session, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from backend.kit.db import Database
from backend.settings import Settings

# Dependencies are `async def` even when they do not await: FastAPI runs a
# plain `def` dependency in the thread pool, a thread hop per request each.


async def get_settings_dep(request: HTTPConnection) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def database_of(connection: HTTPConnection) -> Database:
    database: Database = connection.app.state.db
    return database


async def get_database(request: HTTPConnection) -> Database:
    return database_of(request)


async def get_redis(request: HTTPConnection) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_session(request: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed before the response is sent,
    rolled back whole on any error. Only this (and the worker's job context)
    commits; services and repositories flush at most.

    The transaction begins at the first query, so the tenant set by the
    principal dependency is what row-level security sees.
    """
    async with database_of(request).transaction() as session:
        yield session


AppSettings = Annotated[Settings, Depends(get_settings_dep)]
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
RedisClient = Annotated[Redis, Depends(get_redis)]
