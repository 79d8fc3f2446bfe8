"""The documentation crawler: crawls, their stored pages and exports.

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-03 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0008"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_OWNED = ["crawls", "crawl_pages", "crawl_exports"]


def _crawl_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("crawl_id", sa.UUID(), sa.ForeignKey("crawls.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "crawls",
        *rls.tenant_columns(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), server_default="queued", nullable=False),
        sa.Column("job_id", sa.UUID(), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("options", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("headers_ciphertext", sa.Text(), nullable=True),
        sa.Column("stats", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
    )
    op.create_index("ix_crawls_tenant_created", "crawls", ["tenant_id", "created_at", "id"])
    op.create_index("ix_crawls_tenant_status", "crawls", ["tenant_id", "status"])

    op.create_table(
        "crawl_pages",
        *rls.tenant_columns(),
        _crawl_fk(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("words", sa.Integer(), server_default="0", nullable=False),
        sa.Column("size", sa.Integer(), server_default="0", nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("markdown", sa.Text(), nullable=True),
        sa.Column("links", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "document_id", sa.UUID(), sa.ForeignKey("documents.id", ondelete="SET NULL"), nullable=True
        ),
        sa.CheckConstraint("status IN ('ok', 'error', 'skipped')", name="status"),
    )
    op.create_index(
        "uq_crawl_pages_tenant_crawl_url", "crawl_pages", ["tenant_id", "crawl_id", "url"], unique=True
    )
    op.create_index(
        "ix_crawl_pages_tenant_crawl_created", "crawl_pages", ["tenant_id", "crawl_id", "created_at", "id"]
    )

    op.create_table(
        "crawl_exports",
        *rls.tenant_columns(),
        _crawl_fk(),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
        sa.CheckConstraint("format IN ('markdown', 'html', 'json', 'zip')", name="format"),
    )
    op.create_index(
        "uq_crawl_exports_tenant_crawl_format", "crawl_exports", ["tenant_id", "crawl_id", "format"], unique=True
    )

    rls.make_tenant_owned(TENANT_OWNED)


def downgrade() -> None:
    rls.drop_tenant_owned(TENANT_OWNED)
