"""vocabularies (a client's saved terms, with their renderings per language) and videos.vocabulary
(the terms a video's AI tasks use)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vocabularies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,  # ids are never handed out twice
    )
    op.create_index("ix_vocabularies_client_id", "vocabularies", ["client_id", "id"])
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("vocabulary", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("vocabulary")
    op.drop_index("ix_vocabularies_client_id", table_name="vocabularies")
    op.drop_table("vocabularies")
