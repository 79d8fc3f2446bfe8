"""Documents, resumable uploads and cases (with per-tenant case references).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_OWNED = ["cases", "case_counters", "documents", "uploads", "upload_parts"]

CASE_SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, coalesce(reference, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')"
)
DOCUMENT_SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, "
    "left(coalesce(extracted_text, ''), 250000)), 'C')"
)


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def _tenant_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.UUID(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _soft_delete() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.UUID(), nullable=True),
    ]


def _tags() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tags", postgresql.ARRAY(sa.String(100)), server_default="{}", nullable=False)


def upgrade() -> None:
    role = rls.app_role()

    op.create_table(
        "cases",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("reference", sa.String(20), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), server_default="open", nullable=False),
        sa.Column("priority", sa.String(10), server_default="normal", nullable=False),
        sa.Column("assignee_id", sa.UUID(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        _tags(),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("search_vector", postgresql.TSVECTOR(), sa.Computed(CASE_SEARCH_VECTOR, persisted=True)),
        *_soft_delete(),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'on_hold', 'closed')", name="status"),
        sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
    )
    op.create_index("uq_cases_tenant_reference", "cases", ["tenant_id", "reference"], unique=True)
    op.create_index("ix_cases_tenant_created", "cases", ["tenant_id", "created_at", "id"])
    op.create_index("ix_cases_tenant_updated", "cases", ["tenant_id", "updated_at", "id"])
    op.create_index("ix_cases_tenant_due", "cases", ["tenant_id", "due_at", "id"])
    op.create_index("ix_cases_tenant_status", "cases", ["tenant_id", "status"])
    op.create_index("ix_cases_tenant_assignee", "cases", ["tenant_id", "assignee_id"])
    op.create_index("ix_cases_tags", "cases", ["tags"], postgresql_using="gin")
    op.create_index("ix_cases_search", "cases", ["search_vector"], postgresql_using="gin")

    op.create_table(
        "case_counters",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("last_value", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index("uq_case_counters_tenant", "case_counters", ["tenant_id"], unique=True)

    op.create_table(
        "documents",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("mime_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("is_duplicate", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), server_default="uploaded", nullable=False),
        _tags(),
        sa.Column("case_id", sa.UUID(), sa.ForeignKey("cases.id", ondelete="SET NULL"), nullable=True),
        sa.Column("extracted_text", sa.Text(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(20), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column(
            "search_vector", postgresql.TSVECTOR(), sa.Computed(DOCUMENT_SEARCH_VECTOR, persisted=True)
        ),
        *_soft_delete(),
        sa.CheckConstraint("status IN ('uploaded', 'processing', 'processed', 'failed')", name="status"),
        sa.CheckConstraint("size >= 0", name="size"),
    )
    op.create_index(
        "uq_documents_tenant_sha256_live",
        "documents",
        ["tenant_id", "sha256"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL AND NOT is_duplicate"),
    )
    op.create_index("ix_documents_tenant_sha256", "documents", ["tenant_id", "sha256"])
    op.create_index("ix_documents_tenant_created", "documents", ["tenant_id", "created_at", "id"])
    op.create_index("ix_documents_tenant_updated", "documents", ["tenant_id", "updated_at", "id"])
    op.create_index("ix_documents_tenant_title", "documents", ["tenant_id", "title", "id"])
    op.create_index("ix_documents_tenant_size", "documents", ["tenant_id", "size", "id"])
    op.create_index("ix_documents_tenant_case", "documents", ["tenant_id", "case_id", "created_at"])
    op.create_index("ix_documents_tenant_status", "documents", ["tenant_id", "status"])
    op.create_index("ix_documents_tenant_deleted", "documents", ["tenant_id", "deleted_at"])
    op.create_index("ix_documents_tags", "documents", ["tags"], postgresql_using="gin")
    op.create_index("ix_documents_search", "documents", ["search_vector"], postgresql_using="gin")

    op.create_table(
        "uploads",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.String(200), nullable=True),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        _tags(),
        sa.Column("case_id", sa.UUID(), sa.ForeignKey("cases.id", ondelete="SET NULL"), nullable=True),
        sa.Column("allow_duplicate", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("part_size", sa.BigInteger(), nullable=False),
        sa.Column("part_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_id", sa.UUID(), sa.ForeignKey("documents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'completed')", name="status"),
    )
    op.create_index("ix_uploads_tenant_created", "uploads", ["tenant_id", "created_at", "id"])
    op.create_index("ix_uploads_expires", "uploads", ["expires_at"])

    op.create_table(
        "upload_parts",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("upload_id", sa.UUID(), sa.ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
    )
    op.create_index(
        "uq_upload_parts_tenant_upload_number", "upload_parts", ["tenant_id", "upload_id", "number"], unique=True
    )

    for table in TENANT_OWNED:
        op.execute(rls.grant_read_write(table, role))
        for statement in rls.tenant_policy(table):
            op.execute(statement)


def downgrade() -> None:
    for table in ["upload_parts", "uploads", "documents", "case_counters", "cases"]:
        op.drop_table(table)
