"""Scans workload: segmentations, their segments and the segments' files
(a mesh's analysis goes to `documents.metadata`, added by 0005).

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-03 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["segmentations", "segments", "segment_files"]


def upgrade() -> None:
    op.create_table(
        "segmentations",
        *rls.tenant_columns(),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("segment_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("discarded_faces", sa.BigInteger(), nullable=True),
        sa.Column("total_faces", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_segmentations_tenant_case_created", "segmentations", ["tenant_id", "case_id", "created_at", "id"]
    )
    op.create_index("ix_segmentations_tenant_created", "segmentations", ["tenant_id", "created_at", "id"])
    op.create_index("ix_segmentations_tenant_job", "segmentations", ["tenant_id", "job_id"])
    op.create_index(
        "uq_segmentations_tenant_active_request",
        "segmentations",
        ["tenant_id", "document_id", "request_hash"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )

    op.create_table(
        "segments",
        *rls.tenant_columns(),
        sa.Column(
            "segmentation_id", sa.UUID(), sa.ForeignKey("segmentations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("tooth_number", sa.SmallInteger(), nullable=True),
        sa.Column("edited_fields", postgresql.ARRAY(sa.String(50)), nullable=False),
        sa.Column("faces", sa.BigInteger(), nullable=False),
        sa.Column("vertices", sa.BigInteger(), nullable=False),
        sa.Column("surface_area", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=True),
        sa.Column("watertight", sa.Boolean(), nullable=False),
        sa.Column("bounds", postgresql.JSONB(), nullable=False),
        sa.Column("centroid", postgresql.JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
    )
    op.create_index("ix_segments_tenant_case_created", "segments", ["tenant_id", "case_id", "created_at", "id"])
    op.create_index("ix_segments_tenant_segmentation", "segments", ["tenant_id", "segmentation_id", "number"])

    op.create_table(
        "segment_files",
        *rls.tenant_columns(),
        sa.Column("segment_id", sa.UUID(), sa.ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
    )
    op.create_index(
        "uq_segment_files_tenant_segment_format", "segment_files", ["tenant_id", "segment_id", "format"], unique=True
    )

    rls.make_tenant_owned(TABLES)


def downgrade() -> None:
    rls.drop_tenant_owned(TABLES)
