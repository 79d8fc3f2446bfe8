"""The naive stack: `GET /documents` written the way a typical FastAPI
template writes it, served by the baseline server next to the bare query.

What "typical" means here (the full-stack template's and most tutorials'
shape): an ORM `AsyncSession` per request from a `get_db` dependency, a
`get_current_user` dependency that verifies the bearer JWT and loads the
user's row through the ORM on every request, the list read as ORM
instances, and `response_model=list[DocumentOut]` validating each item. No
caches, no row-level security (it connects as the database owner and filters
by tenant itself), no rate limit, no middleware: it does less than Dossier,
and only its shape is naive. The figure Dossier is compared with is this
route's requests/s in the same run (`documents-list-vs-naive`).

Configured by the bench through the baseline server's environment:
`BENCH_NAIVE_DATABASE_URL` and `BENCH_NAIVE_JWT_{SECRET,ALGORITHM,AUDIENCE,ISSUER}`.
"""

import os
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import OAuth2PasswordBearer
from jose import JWTError, jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from backend import db_models  # noqa: F401  (every mapper configured, as the app does)
from backend.documents.models import Document
from backend.documents.schemas import DocumentOut
from backend.kit.db import async_url
from backend.users.models import User

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/token")


def naive_sessionmaker(pool_size: int) -> async_sessionmaker[AsyncSession] | None:
    url = os.environ.get("BENCH_NAIVE_DATABASE_URL")
    if not url:
        return None
    engine = create_async_engine(async_url(url), pool_size=pool_size, max_overflow=0)
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker = request.app.state.naive_sessions
    if sessionmaker is None:
        raise HTTPException(503, "no database configured")
    async with sessionmaker() as session:
        yield session


async def get_current_user(
    token: Annotated[str, Depends(oauth2_scheme)],
    session: Annotated[AsyncSession, Depends(get_db)],
) -> User:
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            os.environ["BENCH_NAIVE_JWT_SECRET"],
            algorithms=[os.environ.get("BENCH_NAIVE_JWT_ALGORITHM", "HS256")],
            audience=os.environ.get("BENCH_NAIVE_JWT_AUDIENCE"),
            issuer=os.environ.get("BENCH_NAIVE_JWT_ISSUER"),
        )
    except JWTError:
        raise HTTPException(401, "Could not validate credentials") from None
    user = await session.get(User, UUID(payload["sub"]))
    if user is None or not user.is_active or user.deleted_at is not None:
        raise HTTPException(401, "Could not validate credentials")
    return user


router = APIRouter(prefix="/naive")


@router.get("/documents", response_model=list[DocumentOut])
async def list_documents(
    user: Annotated[User, Depends(get_current_user)],
    session: Annotated[AsyncSession, Depends(get_db)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    result = await session.execute(
        select(Document)
        .where(Document.tenant_id == user.tenant_id, Document.deleted_at.is_(None))
        .order_by(Document.created_at.desc(), Document.id.desc())
        .limit(limit)
    )
    return result.scalars().all()


def add_naive_routes(app: FastAPI) -> None:
    app.include_router(router)
