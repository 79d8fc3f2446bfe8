"""Candidates, requisitions and tenant skills (the CV workload).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_OWNED = ["candidates", "requisitions", "candidate_skills"]

CANDIDATE_SEARCH_VECTOR = (
    "setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(headline, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, "
    "left(coalesce(cv_text, ''), 200000)), 'C')"
)


def _common(*, soft_delete: bool = True, versioned: bool = True) -> list[sa.Column]:  # type: ignore[type-arg]
    columns = rls.tenant_columns()
    if soft_delete:
        columns += [
            sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("deleted_by", sa.UUID(), nullable=True),
        ]
    if versioned:
        columns.append(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    return columns


def _array(name: str, item: sa.types.TypeEngine) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, postgresql.ARRAY(item), server_default="{}", nullable=False)


def upgrade() -> None:
    op.create_table(
        "candidates",
        *_common(),
        sa.Column("name", sa.String(300), nullable=True),
        _array("emails", sa.String(320)),
        _array("phones", sa.String(20)),
        sa.Column("location", sa.String(300), nullable=True),
        sa.Column("links", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("headline", sa.String(500), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        _array("skills", sa.String(200)),
        sa.Column("experience", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("education", postgresql.JSONB(), server_default="[]", nullable=False),
        _array("languages", sa.String(8)),
        sa.Column("total_experience_months", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(20), server_default="new", nullable=False),
        _array("tags", sa.String(100)),
        _array("document_ids", sa.UUID()),
        _array("requisition_ids", sa.UUID()),
        _array("edited_fields", sa.String(40)),
        sa.Column("profile_document_id", sa.UUID(), nullable=True),
        sa.Column("profile_document_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parsed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cv_text", sa.Text(), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(CANDIDATE_SEARCH_VECTOR, persisted=True),
            nullable=True,
        ),
    )
    op.create_index("ix_candidates_tenant_created", "candidates", ["tenant_id", "created_at", "id"])
    op.create_index("ix_candidates_tenant_name", "candidates", ["tenant_id", "name", "id"])
    op.create_index(
        "ix_candidates_tenant_experience", "candidates", ["tenant_id", "total_experience_months", "id"]
    )
    op.create_index("ix_candidates_tenant_status", "candidates", ["tenant_id", "status"])
    op.create_index("ix_candidates_tenant_deleted", "candidates", ["tenant_id", "deleted_at"])
    for column in ("skills", "emails", "phones", "tags", "document_ids"):
        op.create_index(f"ix_candidates_{column}", "candidates", [column], postgresql_using="gin")
    op.create_index("ix_candidates_search", "candidates", ["search_vector"], postgresql_using="gin")

    op.create_table(
        "requisitions",
        *_common(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _array("required_skills", sa.String(200)),
        _array("preferred_skills", sa.String(200)),
        sa.Column("min_experience_years", sa.Float(), nullable=True),
        sa.Column("location", sa.String(300), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
    )
    op.create_index("ix_requisitions_tenant_created", "requisitions", ["tenant_id", "created_at", "id"])
    op.create_index("ix_requisitions_tenant_title", "requisitions", ["tenant_id", "title", "id"])
    op.create_index("ix_requisitions_tenant_deleted", "requisitions", ["tenant_id", "deleted_at"])

    op.create_table(
        "candidate_skills",
        *_common(versioned=False),
        sa.Column("name", sa.String(200), nullable=False),
        _array("aliases", sa.String(200)),
        sa.Column("created_by", sa.UUID(), nullable=True),
    )
    op.create_index(
        "uq_candidate_skills_tenant_name_live",
        "candidate_skills",
        ["tenant_id", sa.text("lower(name)")],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_candidate_skills_tenant_created", "candidate_skills", ["tenant_id", "created_at", "id"]
    )

    rls.make_tenant_owned(TENANT_OWNED)


def downgrade() -> None:
    rls.drop_tenant_owned(TENANT_OWNED)
