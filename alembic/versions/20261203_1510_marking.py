"""Marking: guides, batches and sheets.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["marking_guides", "marking_batches", "marking_sheets"]


def _soft_delete() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.UUID(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "marking_guides",
        *rls.tenant_columns(),
        *_soft_delete(),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("pass_percentage", sa.Float(), nullable=False),
        sa.Column("student_id_digits", sa.Integer(), nullable=False),
        sa.Column("questions", postgresql.JSONB(), nullable=False),
        sa.Column("total_marks", sa.Float(), nullable=False),
        sa.Column("question_count", sa.Integer(), nullable=False),
        sa.Column("warnings", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
    )
    op.create_index("ix_marking_guides_tenant_created", "marking_guides", ["tenant_id", "created_at", "id"])
    op.create_index("ix_marking_guides_tenant_updated", "marking_guides", ["tenant_id", "updated_at", "id"])
    op.create_index("ix_marking_guides_tenant_title", "marking_guides", ["tenant_id", "title", "id"])
    op.create_index("ix_marking_guides_tenant_subject", "marking_guides", ["tenant_id", "subject"])

    op.create_table(
        "marking_batches",
        *rls.tenant_columns(),
        sa.Column("guide_id", sa.UUID(), sa.ForeignKey("marking_guides.id", ondelete="CASCADE"), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=True),
        sa.Column("pages_per_sheet", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
    )
    op.create_index("ix_marking_batches_tenant_created", "marking_batches", ["tenant_id", "created_at", "id"])
    op.create_index("ix_marking_batches_tenant_guide", "marking_batches", ["tenant_id", "guide_id"])

    op.create_table(
        "marking_sheets",
        *rls.tenant_columns(),
        *_soft_delete(),
        sa.Column("guide_id", sa.UUID(), sa.ForeignKey("marking_guides.id", ondelete="CASCADE"), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("batch_id", sa.UUID(), sa.ForeignKey("marking_batches.id", ondelete="CASCADE"), nullable=True),
        sa.Column("first_page", sa.Integer(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("student_id", sa.String(64), nullable=True),
        sa.Column("student_name", sa.String(200), nullable=True),
        sa.Column("student_id_given", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=True),
        sa.Column("score", postgresql.JSONB(), nullable=True),
        sa.Column("questions", postgresql.JSONB(), nullable=False),
        sa.Column("qa", postgresql.JSONB(), nullable=True),
        sa.Column("requires_review", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
    )
    op.create_index("ix_marking_sheets_tenant_created", "marking_sheets", ["tenant_id", "created_at", "id"])
    op.create_index("ix_marking_sheets_tenant_updated", "marking_sheets", ["tenant_id", "updated_at", "id"])
    op.create_index("ix_marking_sheets_tenant_guide", "marking_sheets", ["tenant_id", "guide_id"])
    op.create_index("ix_marking_sheets_tenant_batch", "marking_sheets", ["tenant_id", "batch_id"])
    op.create_index("ix_marking_sheets_tenant_status", "marking_sheets", ["tenant_id", "status"])
    op.create_index("ix_marking_sheets_tenant_student", "marking_sheets", ["tenant_id", "student_id"])

    rls.make_tenant_owned(TABLES)


def downgrade() -> None:
    rls.drop_tenant_owned(TABLES)
